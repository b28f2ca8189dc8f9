"""The one owner of "a restart is under way" in a process.

A change seen by the middleware, a POST to the endpoint, another process's
group restart and mod_wsgi's ``reload_required`` hook can all ask for a
restart, from any thread. :class:`Restarter` makes sure the process is
signalled once, after the response that asked, and counts what it did.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Callable

from ..logs import log
from .fast_exit import exit_after_atexit_handlers
from .registry import choose

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from .strategy import Strategy


class Restarter:
    """Claims, fires and counts this process's restarts.

    :param strategy: the strategy to use, or None to choose one from each
        request's environ.
    """

    def __init__(self, strategy: Strategy | None) -> None:
        self._fixed = strategy
        self._lock = threading.Lock()
        self._claimed = False  # a restart is on its way
        #: mod_wsgi's hook answered True: this daemon process is shutting down,
        #: and every later call of the hook answers True too.
        self.requested = False
        #: A POST here scheduled this process's restart, due after its response.
        self.scheduled = False
        #: How many restarts this process started (or asked mod_wsgi for).
        self.count = 0

    @property
    def claimed(self) -> bool:
        return self._claimed

    def strategy_for(self, environ: Mapping[str, object]) -> Strategy:
        return self._fixed or choose(environ)

    def claim(self) -> bool:
        """Take the restart, unless one is already on its way; True if taken."""
        with self._lock:
            if self._claimed:
                return False
            self._claimed = True
            return True

    def request_from_hook(self) -> None:
        """mod_wsgi's hook answers True: mod_wsgi itself restarts the process."""
        self.requested = True
        self.count += 1
        exit_after_atexit_handlers()

    def fire(self, strategy: Strategy, reason: Sequence[str]) -> None:
        """Restart now with ``strategy`` (the caller holds the claim)."""
        self.count += 1
        try:
            strategy(reason)
        except Exception:
            log.exception(
                "restart strategy %r failed; still serving the current code and still "
                "checking for changes",
                strategy.name,
            )
        else:
            if strategy.exits_process:
                return  # stay claimed: never signal a process twice
        self._claimed = False

    def serve_then_restart(
        self,
        app: WSGIApplication,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        strategy: Strategy,
        reason: Sequence[str],
    ) -> Iterable[bytes]:
        """Serve with ``app``; fire once the response is complete, or if it raised."""
        try:
            body = app(environ, start_response)
        except BaseException:
            self.fire(strategy, reason)
            raise
        return AfterClose(body, lambda: self.fire(strategy, reason))

    def schedule(self, body: Iterable[bytes], strategy: Strategy, reason: str) -> Iterable[bytes]:
        """Restart after ``body`` (a POST's answer) closes, unless the hook already did."""
        self.scheduled = True
        return AfterClose(body, lambda: self._fire_scheduled(strategy, reason))

    def _fire_scheduled(self, strategy: Strategy, reason: str) -> None:
        if self.requested:
            return  # mod_wsgi's hook has already restarted this process
        if self.claim():
            self.fire(strategy, [reason])
        if not strategy.exits_process:
            self.scheduled = False


class AfterClose:
    """Pass the response body through; call ``after`` once the server closes it."""

    def __init__(self, body: Iterable[bytes], after: Callable[[], None]) -> None:
        self._body = body
        self._after: Callable[[], None] | None = after

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        after, self._after = self._after, None
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if after is not None:
                after()
