"""Every restart strategy by name, and the choice of one for the server at hand.

``restart=`` takes ``"auto"``, a name from :data:`STRATEGIES`, or a
``callable(reason)``; :func:`resolve` turns it into a fixed strategy (None
for ``"auto"``), and :func:`choose` picks one from the WSGI environ of the
request that saw the change.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Callable

from .gunicorn import GunicornReload
from .hupper import HupperReload, under_hupper
from .mod_wsgi import SignalSelf, embedded_mode
from .reexec import ReExec, waitress_idle
from .strategy import CallbackStrategy, Strategy, StrategyName, WarnOnly
from .uwsgi import in_uwsgi, uwsgi_reload
from .windows import WindowsApacheRestart

STRATEGIES: dict[StrategyName, Callable[[], Strategy]] = {
    "mod_wsgi-daemon": SignalSelf,
    "apache-windows": WindowsApacheRestart,
    "mod_wsgi-embedded": embedded_mode,
    "gunicorn": GunicornReload,
    "uwsgi": uwsgi_reload,
    "exec": ReExec,
    "hupper": HupperReload,
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
    software = str(environ.get("SERVER_SOFTWARE", ""))
    if under_hupper():
        return HupperReload()
    if in_uwsgi(environ):
        return uwsgi_reload()
    if software.startswith("gunicorn"):
        return GunicornReload()
    if software.startswith("WSGIServer/"):  # wsgiref writes the response before close()
        return ReExec()
    if software.startswith("waitress"):
        idle = waitress_idle(environ)
        if idle is not None:
            return ReExec(idle)
    return unknown_server(str(environ.get("SERVER_SOFTWARE", "unknown")))


def unknown_server(software: str) -> WarnOnly:
    return WarnOnly(
        "none",
        f"reloadmw does not know how to restart server {software!r}. Pass restart= a "
        f"strategy name ({', '.join(sorted(STRATEGIES))}) or a callable(reason)",
    )


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
