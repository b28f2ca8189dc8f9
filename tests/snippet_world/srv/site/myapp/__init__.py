"""A stand-in for the user's WSGI app that the docs' snippets import."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [b"Hello from myapp\n"]


def make_app() -> WSGIApplication:
    """The app factory of ``from myapp import make_app``."""
    return application


create_app = make_app


def main(global_conf: dict[str, str], **settings: Any) -> WSGIApplication:
    """``paste.app_factory`` for ``use = egg:myapp``."""
    return application
