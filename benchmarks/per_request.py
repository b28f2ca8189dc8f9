"""Per-request cost when no check is due: a bare app, two hand-written gates, ReloadMiddleware."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from itertools import repeat, starmap
from typing import TYPE_CHECKING, Any, Callable

from reloadmw import ReloadMiddleware
from reloadmw.gate import IMPLEMENTATION, PyGate

__all__ = ["IMPLEMENTATION", "ReloadMiddleware", "hello", "measure", "start_response"]

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

App = Callable[..., Iterable[bytes]]


def hello(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The trivial app: PEP 3333's hello world."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, world!"]


def html_page(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """A small HTML page, which live reload gives its script."""
    start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", "40")])
    return [b"<html><body><p>Hello!</p></body></html>\n"]


def consumed(app: App) -> App:
    """``app``, its body read and closed as a server does (the script goes in while it is read)."""

    def call(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body = app(environ, start_response)
        chunks = list(body)
        close = getattr(body, "close", None)
        if close is not None:
            close()
        return chunks

    return call


def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


class ClassGate:
    """A plain class middleware with a ``time.monotonic()`` gate."""

    def __init__(self, app: WSGIApplication, interval: float = 3600.0) -> None:
        self.app = app
        self.interval = interval
        self.next_check = time.monotonic() + interval

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if time.monotonic() >= self.next_check:
            self.next_check = time.monotonic() + self.interval
        return self.app(environ, start_response)


def closure_gate(app: WSGIApplication, interval: float = 3600.0) -> App:
    """The same gate in a closure."""
    monotonic = time.monotonic
    state = [monotonic() + interval]

    def gate(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if monotonic() >= state[0]:
            state[0] = monotonic() + interval
        return app(environ, start_response)

    return gate


class PyGateMiddleware(ReloadMiddleware):
    """ReloadMiddleware with the pure-Python gate, as without the C extension."""

    __call__ = PyGate.__call__


def candidates() -> dict[str, App]:
    def make(cls: type[ReloadMiddleware]) -> ReloadMiddleware:
        return cls(hello, interval=3600.0, restart=lambda reason: None)

    apps: dict[str, App] = {
        "bare app": hello,
        "class gate": ClassGate(hello),
        "closure gate": closure_gate(hello),
        "ReloadMiddleware": make(ReloadMiddleware),
        "ReloadMiddleware, live_reload=True": ReloadMiddleware(
            hello, interval=3600.0, restart=lambda reason: None, live_reload=True
        ),
        "  an HTML page, read whole: bare app": consumed(html_page),
        "  the same page given the script": consumed(
            ReloadMiddleware(
                html_page, interval=3600.0, restart=lambda reason: None, live_reload=True
            )
        ),
    }
    if IMPLEMENTATION == "c":
        apps["ReloadMiddleware, Python gate"] = make(PyGateMiddleware)
    return apps


def python_loop(app: App, n: int) -> float:
    """Seconds per call from a Python loop (as the issue measured)."""
    environ: dict[str, Any] = {}
    sr = start_response
    t0 = time.perf_counter()
    for _ in repeat(None, n):
        app(environ, sr)
    return (time.perf_counter() - t0) / n


def server_call(app: App, n: int) -> float:
    """Seconds per call the way mod_wsgi calls: PyObject_Call with an args tuple, from C."""
    args: Iterable[tuple[dict[str, Any], Any]] = repeat(({}, start_response), n)
    t0 = time.perf_counter()
    deque(starmap(app, args), maxlen=0)
    return (time.perf_counter() - t0) / n


def measure(rounds: int, n: int = 200_000) -> dict[str, dict[str, float]]:
    """Medians (seconds per request) by calling style, round-robin over the candidates."""
    apps = candidates()
    samples: dict[str, dict[str, list[float]]] = {
        style: {name: [] for name in apps} for style in ("python loop", "server call")
    }
    for _ in range(rounds):
        for name, app in apps.items():
            samples["python loop"][name].append(python_loop(app, n))
            samples["server call"][name].append(server_call(app, n))
    return {
        style: {name: _median(values) for name, values in by_name.items()}
        for style, by_name in samples.items()
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]
