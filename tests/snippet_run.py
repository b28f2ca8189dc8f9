"""Run one docs snippet, in its own process, and send one request through what it built.

Usage: ``python tests/snippet_run.py python|ini FILE``, from the snippets' site
directory (``/srv/site`` of the world, see ``tests/doc_snippets.py``).

- python: the file runs as a module named ``__snippet__`` (as under mod_wsgi:
  not ``__main__``, so ``if __name__ == "__main__": serve()`` does not block);
  then ``application`` (or ``app``), when it defines one, gets a GET of ``/``.
- ini: PasteDeploy loads it: ``loadapp`` when it has a ``main`` app, pipeline
  or composite, else ``loadfilter`` for each ``[filter:NAME]`` around a plain
  app; the result gets a GET of ``/``.

The GET goes through WebTest with its WSGI lint on.

Prints the status line; exits non-zero (with the traceback) on any error or
a 5xx answer.
"""

from __future__ import annotations

import configparser
import os
import runpy
import sys
from collections.abc import Iterable
from typing import Any, Callable

App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def plain(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"the app behind the filter\n"]


def get(app: App) -> str:
    """GET / through WebTest, with its WSGI lint on, from a loopback client."""
    from webtest import TestApp

    client = TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    status: str = client.get("/", expect_errors=True).status
    return status


def from_python(path: str) -> App | None:
    namespace = runpy.run_path(path, run_name="__snippet__")
    app = namespace.get("application", namespace.get("app"))
    return app if callable(app) else None


def from_ini(path: str) -> App:
    from paste.deploy import loadapp, loadfilter  # type: ignore[import-untyped]

    uri = f"config:{os.path.abspath(path)}"
    sections = configparser.ConfigParser(interpolation=None)
    sections.read(path)
    if {"app:main", "pipeline:main", "composite:main", "main"} & set(sections.sections()):
        return loadapp(uri)  # type: ignore[no-any-return]
    filters = [name.split(":", 1)[1] for name in sections.sections() if name.startswith("filter:")]
    if not filters:
        raise SystemExit(f"{path}: no [app:main], [pipeline:main] or [filter:NAME] to load")
    app: App = plain
    for name in reversed(filters):
        app = loadfilter(uri, name=name)(app)
    return app


def main() -> None:
    kind, path = sys.argv[1:3]
    sys.path.insert(0, os.getcwd())  # the site directory: its modules and dist-info
    app = from_python(path) if kind == "python" else from_ini(path)
    if app is None:
        print("ran; it defines no application")
        return
    status = get(app)
    print(status)
    if status.startswith("5"):
        raise SystemExit(f"{path}: GET / answered {status}")


if __name__ == "__main__":
    main()
