"""Windows only: ask the Apache parent process to restart (mod_wsgi embedded mode).

Apache on Windows runs one child process and mod_wsgi has no daemon mode
there, so the only way to load new code is a restart of Apache itself. The
child can request one through Apache's own ``ap_signal_parent()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

#: ``SIGNAL_PARENT_RESTART`` in Apache's ``mpm_common.h``.
SIGNAL_PARENT_RESTART = 1


def load_libhttpd() -> Any:
    import ctypes

    return ctypes.windll.libhttpd  # type: ignore[attr-defined]


class WindowsApacheRestart:
    """Restart the whole of Apache on Windows through ``ap_signal_parent``."""

    name = "apache-windows"
    exits_process = True

    def __init__(self, loader: Callable[[], Any] = load_libhttpd) -> None:
        self._loader = loader

    def __call__(self, reason: Sequence[str]) -> None:
        self._loader().ap_signal_parent(SIGNAL_PARENT_RESTART)
