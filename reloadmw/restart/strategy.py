"""What a restart strategy is, and the two that are not tied to a server."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable, Literal, Protocol

from ..logs import describe, log

#: The names ``restart=`` accepts besides ``"auto"`` and a callable.
StrategyName = Literal[
    "mod_wsgi-daemon", "mod_wsgi-embedded", "apache-windows", "gunicorn", "uwsgi", "exec", "hupper"
]


class Strategy(Protocol):
    """One way of restarting the process (or server) so that fresh code is loaded."""

    name: str
    #: True when calling it ends this process, so it must never be called twice.
    exits_process: bool

    def __call__(self, reason: Sequence[str]) -> None:
        """Restart, given the changed paths (or a description) as the reason."""


class WarnOnly:
    """Cannot restart here: say so once per change and keep serving."""

    exits_process = False

    def __init__(self, name: str, advice: str) -> None:
        self.name = name
        self._advice = advice

    def __call__(self, reason: Sequence[str]) -> None:
        log.warning("%s changed, but %s", describe(reason), self._advice)


class CallbackStrategy:
    """A user-supplied ``callable(reason)``."""

    exits_process = False

    def __init__(self, callback: Callable[[Sequence[str]], object]) -> None:
        self._callback = callback
        self.name = getattr(callback, "__qualname__", None) or repr(callback)

    def __call__(self, reason: Sequence[str]) -> None:
        self._callback(list(reason))
