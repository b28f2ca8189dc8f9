"""gunicorn: one SIGHUP to the arbiter per change, for all of its workers.

The arbiter starts a new set of workers and stops the old ones gracefully,
so every worker moves to the new code together. Every worker watches the
same files, so two of them can see one edit at the same moment, and two
SIGHUPs would make gunicorn replace its workers twice. The workers share a
small record file, locked with ``flock``, that holds the time of the last
SIGHUP: a change made before it has already been dealt with. The file lives
in the temporary directory, named for the user and the arbiter (pid and
start time), and is only trusted when this user owns it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Sequence

from ..logs import log, prefix
from ..watch.start_time import imported_before_start

#: A change made this close before a SIGHUP still gets its own (the kernel's
#: file times are coarser than ``time.time_ns()``): better twice than never.
_MARGIN_NS = 20_000_000


def hang_up_once(arbiter: int, reason: Sequence[str]) -> bool:
    """SIGHUP ``arbiter`` unless a worker did so after ``reason`` changed; True if sent."""
    changed = changed_at(reason)
    fd = _open_record(arbiter)
    if fd is None:
        os.kill(arbiter, signal.SIGHUP)
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        last = os.pread(fd, 32, 0).decode("ascii", "replace")
        if changed and last.isdigit() and int(last) >= changed:
            return False
        os.kill(arbiter, signal.SIGHUP)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(time.time_ns() - _MARGIN_NS).encode("ascii"), 0)
        return True
    finally:
        os.close(fd)  # also releases the lock


def changed_at(paths: Sequence[str]) -> int:
    """When the newest of ``paths`` changed (``st_ctime_ns``; 0 if none exists).

    ctime, not mtime: restoring an old copy keeps the old mtime but sets ctime.
    """
    times = [0]
    for path in paths:
        with contextlib.suppress(OSError):
            times.append(os.stat(path).st_ctime_ns)
    return max(times)


def _open_record(arbiter: int) -> int | None:
    name = f"reloadmw-{os.geteuid()}-gunicorn-{arbiter}-{_start_ticks(arbiter)}.hup"
    path = os.path.join(tempfile.gettempdir(), name)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError:
        return None
    info = os.fstat(fd)
    if info.st_uid != os.geteuid() or not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return None
    return fd


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (``/proc``), or '' elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode("ascii")
    except (OSError, IndexError):
        return ""


class GunicornReload:
    """gunicorn: SIGHUP to the arbiter (the parent process).

    The arbiter starts a new set of workers, then sends SIGTERM to the old
    ones, which finish the request they are serving (within
    ``--graceful-timeout``) and exit. The listening socket stays open, so no
    connection is refused.
    """

    name = "gunicorn"
    exits_process = True

    def __call__(self, reason: Sequence[str]) -> None:
        arbiter = os.getppid()
        if not _is_gunicorn(arbiter):
            raise RuntimeError(
                f"{prefix()}parent process {arbiter} is not a gunicorn "
                f"arbiter, so SIGHUP would not restart the workers. Run under gunicorn, or "
                f"pass restart= another strategy"
            )
        if imported_before_start():
            raise RuntimeError(
                f"{prefix()}the app was loaded in the gunicorn arbiter "
                f"(pid={arbiter}) before this worker started (--preload / preload_app), so "
                f"SIGHUP would start workers with the same old code. Drop --preload in "
                f"development, or restart gunicorn itself"
            )
        if not hang_up_once(arbiter, reason):
            log.info(
                "another gunicorn worker already sent SIGHUP for this "
                "change; the arbiter is replacing this worker",
            )


def _is_gunicorn(pid: int) -> bool:
    if pid <= 1:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"gunicorn" in f.read()
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return False  # procfs is there, so the parent is gone
    except OSError:
        pass
    # No procfs (macOS, BSD): a gunicorn worker is forked from the arbiter.
    return "gunicorn.arbiter" in sys.modules
