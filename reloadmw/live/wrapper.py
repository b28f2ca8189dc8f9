"""The WSGI side of live reload: its own URLs answered, pages given the script."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from ..logs import log
from .answer import POLL_PATH, SCRIPT_PATH, Audience, failed_page, poll_answer, script, script_tag
from .inject import Response
from .version import Watching

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class Loaded(Protocol):
    """The app loader: after a failed load, the error's last line and the 500 page's text."""

    failure: tuple[str, str] | None


class LiveReload:
    """Wraps the app the middleware dispatches to (see :mod:`reloadmw.live`).

    :param app: the app, or the endpoint in front of it.
    :param watching: what the middleware knows about this process's code.
    :param loader: the app loader, whose failed load this answers for.
    :param allow_from: the clients that see error text (``None``: loopback).
    """

    def __init__(
        self,
        app: WSGIApplication,
        watching: Watching,
        loader: Loaded,
        allow_from: Iterable[str] | str | None,
    ) -> None:
        self.app = app
        self._watching = watching
        self._loader = loader
        self._audience = Audience(allow_from)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == POLL_PATH:
            return self._poll(environ, start_response)
        if path == SCRIPT_PATH:
            return _answer(start_response, "200 OK", "text/javascript", script(), "max-age=86400")
        watching = self._watching
        if environ.get("REQUEST_METHOD") == "GET" and "text/html" in environ.get("HTTP_ACCEPT", ""):
            self._refresh()
        if self._loader.failure is not None:
            return self._failed(environ, start_response, self._loader.failure)
        response = Response(
            environ, start_response, lambda: script_tag(environ, watching), watching.restarting
        )
        return response.body(self.app(environ, response.start))

    def _refresh(self) -> None:
        """Before a page is rendered: take in what changed, so that its token is exact."""
        try:
            self._watching.check()
        except Exception:
            log.exception("checking for changes before a page failed; still serving")

    def _poll(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self._watching.check_next()
        failure = self._loader.failure
        body = poll_answer(
            environ,
            self._watching,
            failure[0] if failure is not None else None,
            self._audience.trusted(environ.get("REMOTE_ADDR")),
        )
        return _answer(start_response, "200 OK", "application/json", body, "no-store")

    def _failed(
        self, environ: WSGIEnvironment, start_response: StartResponse, failure: tuple[str, str]
    ) -> Iterable[bytes]:
        summary, page = failure
        trusted = self._audience.trusted(environ.get("REMOTE_ADDR"))
        tag = script_tag(environ, self._watching)
        body = failed_page(page, summary if trusted else None, tag)
        return _answer(start_response, "500 Internal Server Error", "text/html", body, "no-store")


def _answer(
    start_response: StartResponse, status: str, mime: str, body: bytes, cache: str
) -> list[bytes]:
    start_response(
        status,
        [
            ("Content-Type", f"{mime}; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", cache),
        ],
    )
    return [body]
