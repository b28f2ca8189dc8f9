"""What a monitor is, and which one ``backend=`` (or ``RELOADMW_BACKEND``) gives."""

from __future__ import annotations

import errno
import gc
import os
import sys
from collections.abc import Sequence
from typing import Literal, Protocol

from ..logs import log, prefix
from .patterns import IgnoreRules, Tree
from .stat import StatMonitor

Backend = Literal["auto", "stat", "inotify"]
BACKENDS: tuple[Backend, ...] = ("auto", "stat", "inotify")
#: Names the backend when ``backend="auto"``: ``RELOADMW_BACKEND=stat`` forces
#: stat polling where inotify delivers no events (NFS, Docker Desktop, WSL mounts).
BACKEND_ENV = "RELOADMW_BACKEND"


class Monitor(Protocol):
    """Finds which watched files changed since it was last asked."""

    name: str

    def add_files(self, paths: Sequence[str]) -> None:
        """Watch these files; one saved after the process started counts as changed."""

    def add_tree(self, tree: Tree) -> None:
        """Watch every matching file under a directory, including files created later."""

    def poll(self) -> dict[str, float]:
        """Return the paths changed since the last poll, each with the wall time it changed."""

    def __len__(self) -> int:
        """Return how many files are watched."""

    @property
    def newest_ns(self) -> int:
        """The newest file version (ns) among the baselines before the start and the changes."""

    def close(self) -> None:
        """Release any OS resources."""


def make_monitor(backend: str, start_ns: int, ignored: IgnoreRules) -> Monitor:
    """A monitor for ``backend``; ``start_ns`` is when this process started.

    ``auto`` takes ``RELOADMW_BACKEND`` if set, else on Linux inotify with stat
    polling for the files on network and shared mounts
    (:class:`~reloadmw.watch.auto.AutoMonitor`), and falls back to stat with
    one warning saying why when inotify cannot start.
    """
    chosen = known_backend(backend, "backend")
    if chosen == "auto":
        chosen = known_backend(os.environ.get(BACKEND_ENV, "").strip() or "auto", BACKEND_ENV)
    if chosen == "stat":
        return StatMonitor(start_ns, ignored)
    if chosen == "inotify":
        return _inotify(start_ns, ignored)
    if not sys.platform.startswith("linux"):
        return StatMonitor(start_ns, ignored)
    try:
        return _inotify(start_ns, ignored, mounts=True)
    except RuntimeError as exc:
        log.warning("%s; using the stat backend instead", exc)
        return StatMonitor(start_ns, ignored)


def known_backend(value: object, option: str) -> Backend:
    """``value`` as a :data:`Backend`; ValueError naming ``option`` if it is not one."""
    if value not in BACKENDS:
        raise ValueError(
            f"reloadmw: {option}={value!r} is not a known backend; use one of {', '.join(BACKENDS)}"
        )
    return value


def _inotify(start_ns: int, ignored: IgnoreRules, mounts: bool = False) -> Monitor:
    """An inotify monitor, with ``mounts`` one that polls what inotify cannot see.

    RuntimeError saying why and what to do if inotify cannot start.
    """
    from .auto import AutoMonitor
    from .inotify import InotifyMonitor

    kind: type[AutoMonitor | InotifyMonitor] = AutoMonitor if mounts else InotifyMonitor
    try:
        try:
            return kind(start_ns, ignored)
        except OSError as exc:
            if exc.errno != errno.EMFILE:
                raise
            # Middlewares dropped but not yet collected still hold their instances.
            gc.collect()
            return kind(start_ns, ignored)
    except ImportError as exc:
        raise RuntimeError(
            f"{prefix()}the inotify backend needs the inotify_simple package ({exc}); "
            f"install it with 'pip install inotify_simple' or pass backend=\"stat\""
        ) from exc
    except OSError as exc:
        raise RuntimeError(
            f"{prefix()}inotify cannot start ({exc.strerror or exc}); for 'Too many open "
            "files' raise 'sysctl fs.inotify.max_user_instances' (or the process's open-file "
            'limit), or pass backend="stat"'
        ) from exc
