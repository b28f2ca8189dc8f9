"""Pick the change-detection backend named by ``backend=`` or ``RELOADMW_BACKEND``."""

from __future__ import annotations

import errno
import gc
import logging
import os
import sys
from typing import TYPE_CHECKING

from .stat_monitor import StatMonitor

if TYPE_CHECKING:
    from .interfaces import Monitor
    from .patterns import IgnoreRules

log = logging.getLogger("reloadmw")

BACKENDS = ("auto", "stat", "inotify")
#: Names the backend when ``backend="auto"``: ``RELOADMW_BACKEND=stat`` forces
#: stat polling where inotify delivers no events (NFS, Docker Desktop, WSL mounts).
BACKEND_ENV = "RELOADMW_BACKEND"


def make_monitor(backend: str, start_ns: int, ignored: IgnoreRules) -> Monitor:
    """A monitor for ``backend``; ``start_ns`` is when this process started.

    ``auto`` takes ``RELOADMW_BACKEND`` if set, else inotify on Linux, and falls
    back to stat with one warning saying why when inotify cannot start.
    """
    _known(backend, f"backend={backend!r}")
    if backend == "auto":
        backend = os.environ.get(BACKEND_ENV, "").strip() or "auto"
        _known(backend, f"{BACKEND_ENV}={backend!r}")
    if backend == "stat":
        return StatMonitor(start_ns, ignored)
    if backend == "inotify":
        return _inotify(start_ns, ignored)
    if not sys.platform.startswith("linux"):
        return StatMonitor(start_ns, ignored)
    try:
        return _inotify(start_ns, ignored)
    except RuntimeError as exc:
        log.warning("%s; using the stat backend instead", exc)
        return StatMonitor(start_ns, ignored)


def _inotify(start_ns: int, ignored: IgnoreRules) -> Monitor:
    """An :class:`InotifyMonitor`; RuntimeError saying why and what to do if it cannot start."""
    from .inotify_monitor import InotifyMonitor

    pid = os.getpid()
    try:
        try:
            return InotifyMonitor(start_ns, ignored)
        except OSError as exc:
            if exc.errno != errno.EMFILE:
                raise
            # Middlewares dropped but not yet collected still hold their instances.
            gc.collect()
            return InotifyMonitor(start_ns, ignored)
    except ImportError as exc:
        raise RuntimeError(
            f"reloadmw (pid={pid}): the inotify backend needs the inotify_simple package "
            f"({exc}); install it with 'pip install reloadmw[inotify]' or pass backend=\"stat\""
        ) from exc
    except OSError as exc:
        raise RuntimeError(
            f"reloadmw (pid={pid}): inotify cannot start ({exc.strerror or exc}); for "
            "'Too many open files' raise 'sysctl fs.inotify.max_user_instances' (or the "
            'process\'s open-file limit), or pass backend="stat"'
        ) from exc


def _known(backend: str, given: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(
            f"reloadmw: {given} is not a known backend; use one of {', '.join(BACKENDS)}"
        )
