"""Restart strategies: how a process gets fresh code once a change is seen.

Each strategy is a small callable taking the reason (the changed paths).
``choose(environ)`` picks one from the WSGI environ of the request that saw
the change; :data:`STRATEGIES` maps the names accepted by ``restart=``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Callable

from .servers import SERVER_STRATEGIES, choose_server
from .winapi import WindowsApacheRestart

if TYPE_CHECKING:
    from .interfaces import Strategy

log = logging.getLogger("reloadmw")


class SignalSelf:
    """mod_wsgi daemon mode: SIGINT to our own pid.

    mod_wsgi treats it as a graceful shutdown: requests in flight get up to
    ``shutdown-timeout`` seconds to finish, then a fresh process is started.
    """

    name = "mod_wsgi-daemon"
    exits_process = True

    def __call__(self, reason: Sequence[str]) -> None:
        os.kill(os.getpid(), signal.SIGINT)


class WarnOnly:
    """Cannot restart here: say so once per change and keep serving."""

    exits_process = False

    def __init__(self, name: str, advice: str) -> None:
        self.name = name
        self._advice = advice

    def __call__(self, reason: Sequence[str]) -> None:
        log.warning(
            "reloadmw (pid=%d): %s changed, but %s", os.getpid(), describe(reason), self._advice
        )


class CallbackStrategy:
    """A user-supplied ``callable(reason)``."""

    exits_process = False

    def __init__(self, callback: Callable[[Sequence[str]], object]) -> None:
        self._callback = callback
        self.name = getattr(callback, "__qualname__", None) or repr(callback)

    def __call__(self, reason: Sequence[str]) -> None:
        self._callback(list(reason))


def embedded_mode() -> WarnOnly:
    return WarnOnly(
        "mod_wsgi-embedded",
        "mod_wsgi embedded mode cannot restart Apache's child processes. Use daemon mode "
        "(WSGIDaemonProcess + WSGIProcessGroup) or restart Apache by hand",
    )


def unknown_server(software: str) -> WarnOnly:
    return WarnOnly(
        "none",
        f"reloadmw does not know how to restart server {software!r}. Pass restart= a "
        f"strategy name ({', '.join(sorted(STRATEGIES))}) or a callable(reason)",
    )


STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "mod_wsgi-daemon": SignalSelf,
    "apache-windows": WindowsApacheRestart,
    "mod_wsgi-embedded": embedded_mode,
    **SERVER_STRATEGIES,
}


def choose(environ: Mapping[str, object]) -> Strategy:
    """The strategy for the server that sent ``environ``."""
    group = environ.get("mod_wsgi.process_group")
    if group is not None:
        if group:
            return SignalSelf()
        if sys.platform == "win32":
            return WindowsApacheRestart()
        return embedded_mode()
    return choose_server(environ) or unknown_server(str(environ.get("SERVER_SOFTWARE", "unknown")))


def resolve(restart: str | Callable[[Sequence[str]], object]) -> Strategy | None:
    """Turn the ``restart=`` option into a fixed strategy, or None for ``"auto"``."""
    if callable(restart):
        return CallbackStrategy(restart)
    if restart == "auto":
        return None
    if isinstance(restart, str) and restart in STRATEGIES:
        return STRATEGIES[restart]()
    raise ValueError(
        f"reloadmw: restart={restart!r} is not a known strategy; use 'auto', one of "
        f"{', '.join(sorted(STRATEGIES))}, or a callable(reason)"
    )


def describe(paths: Sequence[str], limit: int = 3) -> str:
    """``'a.py', 'b.py' and 4 more`` for log lines."""
    shown = ", ".join(repr(p) for p in paths[:limit])
    rest = len(paths) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown
