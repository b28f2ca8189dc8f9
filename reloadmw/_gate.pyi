from collections.abc import Iterable

from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

def monotonic() -> float: ...

class Gate:
    _next_check: float
    _dispatch: WSGIApplication
    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]: ...
    # Not defined by Gate: the subclass provides it.
    def _checked_call(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]: ...
