"""Pick the change-detection backend named by ``backend=``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .stat_monitor import StatMonitor

if TYPE_CHECKING:
    from .interfaces import Monitor

BACKENDS = ("auto", "stat")


def make_monitor(backend: str, start_ns: int, ignored: Callable[[str], bool]) -> Monitor:
    """A monitor for ``backend``; ``start_ns`` is when this process started."""
    if backend not in BACKENDS:
        raise ValueError(
            f"reloadmw: backend={backend!r} is not known; use one of {', '.join(BACKENDS)}"
        )
    return StatMonitor(start_ns, ignored)
