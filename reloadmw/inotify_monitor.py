"""The Linux backend: the kernel says which watched directories changed.

A check that finds nothing is one ``poll(2)`` of the inotify descriptor, so it
costs the same whether 100 or 100,000 files are watched. Only the files named
by events are stat'ed, with the same rules as :class:`StatMonitor`, which this
class extends: the stamps, the start-up baseline, tracked trees and the
unreadable-file rule are shared, and a full stat pass is the fallback when the
kernel's event queue overflowed or the watch limit was reached.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import select
import time
import weakref
from collections.abc import Iterable, Sequence
from stat import S_ISLNK
from typing import Protocol

from .patterns import IgnoreRules, Tree
from .stat_monitor import Stamp, StatMonitor

log = logging.getLogger("reloadmw")

# Event bits from <sys/inotify.h> (kernel ABI).
IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_UNMOUNT = 0x2000
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_EXCL_UNLINK = 0x4000000

#: What a watch asks for: content changes only. Never open, access or
#: close-nowrite, so that reading a file (as the app does) is not an event.
WATCH_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
    | IN_EXCL_UNLINK
)
#: The watched directory itself went away: its watch is gone.
_LOST = IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT
#: An entry appeared or vanished: a tracked directory must be listed again.
_ENTRIES = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO
#: A name now points at another file.
_ARRIVED = IN_CREATE | IN_MOVED_TO
#: Reads per check before the backlog is treated like an overflow.
_MAX_READS = 16
_READ_SIZE = 65536
WATCHES_SYSCTL = "fs.inotify.max_user_watches"


class Inotify(Protocol):
    """The part of ``inotify_simple.INotify`` this backend uses."""

    def fileno(self) -> int: ...

    def add_watch(self, path: str, mask: int) -> int: ...

    def rm_watch(self, wd: int) -> None: ...

    def close(self) -> None: ...


def open_inotify() -> Inotify:
    """A non-blocking inotify instance; raises ImportError or OSError if there is none."""
    from inotify_simple import INotify  # type: ignore[import-untyped,unused-ignore]

    inotify: Inotify = INotify(nonblocking=True)
    return inotify


class InotifyMonitor(StatMonitor):
    """Holds one inotify watch per directory and stats only the files events name.

    Files without a watch of their own (their directory could not be watched,
    or they are symlinks into another directory) are stat'ed on every check;
    after a queue overflow, or once the watch limit is reached, a check is a
    full stat pass. A forked child opens its own instance at its first check.

    :param inotify: an open inotify instance (tests inject one); by default
        :func:`open_inotify` makes it, and its OSError (``EMFILE``: too many
        instances) tells the caller that inotify cannot start.
    """

    name = "inotify"

    def __init__(
        self,
        start_ns: int,
        ignored: IgnoreRules,
        inotify: Inotify | None = None,
    ) -> None:
        super().__init__(start_ns, ignored)
        self._use(inotify if inotify is not None else open_inotify())
        self._wds: dict[str, int] = {}  # watched directory -> watch descriptor
        self._dirs_of: dict[int, list[str]] = {}  # descriptor -> directories (symlinked twins)
        self._unwatchable: set[str] = set()  # directories of plain files that have no watch
        self._polled: set[str] = set()  # files in those: stat'ed on every check
        self._unwatched_trees: set[str] = set()  # tracked directories without a watch
        self._full_scans = False  # the watch limit was hit: stat everything

    def _use(self, inotify: Inotify) -> None:
        """Read events from ``inotify``, in this process."""
        self._inotify = inotify
        # A middleware is rarely closed: release the descriptor when it is collected.
        self._release = weakref.finalize(self, inotify.close)
        self._fd = inotify.fileno()
        self._ready = select.poll()
        self._ready.register(self._fd, select.POLLIN)
        self._pid = os.getpid()

    def fileno(self) -> int:
        """The inotify file descriptor."""
        return self._fd

    def add_files(self, paths: Sequence[str]) -> None:
        fresh = len(self._fresh)
        super().add_files(paths)
        # Watch first, baseline later (at the next poll): no edit falls in between.
        new = self._fresh[fresh:]
        sep = os.sep
        for directory in dict.fromkeys([p.rpartition(sep)[0] or sep for p in new]):
            if directory not in self._wds and (
                directory in self._unwatchable or not self._watch(directory)
            ):
                self._unwatchable.add(directory)
        if self._unwatchable:
            self._polled.update(p for p in new if _parent(p) in self._unwatchable)

    def add_tree(self, tree: Tree) -> None:
        super().add_tree(tree)
        self._watch_trees()

    def poll(self) -> dict[str, float]:
        if self._pid != os.getpid():
            return self._after_fork()
        if self._ready.poll(0):
            return self._changes(self._read())
        if (
            self._fresh
            or self._polled
            or self._unreadable
            or self._unwatched_trees
            or self._full_scans
        ):
            return self._changes([])
        return {}

    def close(self) -> None:
        super().close()
        self._release()
        self._ready = select.poll()  # a poll after close finds nothing, not a closed fd

    # -- events -------------------------------------------------------------

    def _read(self) -> list[tuple[int, int, str]]:
        """Drain the queue: (watch descriptor, mask, name) of each event."""
        from inotify_simple import parse_events

        data = b""
        for _ in range(_MAX_READS):
            try:
                data += os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                break
        else:
            return [(-1, IN_Q_OVERFLOW, "")]  # still flowing: a full pass is cheaper
        return [(e.wd, e.mask, e.name) for e in parse_events(data)]

    def _changes(self, events: Iterable[tuple[int, int, str]]) -> dict[str, float]:
        files: set[str] = set()
        relist: set[str] = set()
        overflow = False
        for wd, mask, name in events:
            if mask & IN_Q_OVERFLOW:
                overflow = True
            elif mask & _LOST:
                files.update(self._lose_watch(wd, mask))
            else:
                for directory in self._dirs_of.get(wd, ()):
                    if name:
                        path = os.path.join(directory, name)
                        files.add(path)
                        if mask & _ARRIVED and path in self._stamps and os.path.islink(path):
                            self._polled.add(path)  # see _first_stamp
                    if mask & _ENTRIES and directory in self._dirs:
                        relist.add(directory)
        if overflow or self._full_scans:
            changed = super().poll()
            self._watch_trees()
            return changed
        return self._check(files, relist)

    def _check(self, files: set[str], relist: set[str]) -> dict[str, float]:
        """Stat the files events named (and those without a watch); list changed trees."""
        changed: dict[str, float] = {}
        now = time.time()
        known = len(self._dirs)
        if self._unwatched_trees:
            waiting = list(self._unwatched_trees)
            self._watch_trees(waiting)
            relist.update(d for d in waiting if d in self._wds)
            self._poll_dirs(self._unwatched_trees, changed, now)  # by stamp, as StatMonitor
        if relist:
            self._poll_dirs(relist, changed, now, relist=True)
        if len(self._dirs) != known or relist:
            self._watch_trees()  # subdirectories found meanwhile
        files |= self._polled
        files |= self._unreadable
        stamps = self._stamps
        self._compare([(p, stamps[p]) for p in files if p in stamps], changed, now)
        if self._fresh:
            self._baseline_fresh(changed, now)
        return changed

    def _first_stamp(self, path: str) -> Stamp:
        """As StatMonitor, with lstat first: the same one syscall for a plain file.

        A symlinked file's target may live where no watch of ours sees it, so
        a symlink is stat'ed on every check instead.
        """
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if S_ISLNK(st.st_mode):
            self._polled.add(path)
            return super()._first_stamp(path)
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _after_fork(self) -> dict[str, float]:
        """A forked worker shares its parent's event queue: each would take the other's events.

        So a child opens an instance of its own, watches the same directories,
        and does one full stat pass for whatever changed in between.
        """
        self._release()  # this process's copy of the descriptor only
        directories = list(self._wds)
        self._wds.clear()
        self._dirs_of.clear()
        try:
            self._use(open_inotify())
        except OSError as exc:
            self._pid = os.getpid()
            self._ready = select.poll()  # nothing registered: never ready
            self._full_scans = True
            log.warning(
                "reloadmw (pid=%d): inotify cannot start in this forked process (%s); "
                "falling back to a stat pass over every watched file on each check",
                os.getpid(),
                exc.strerror or exc,
            )
        else:
            for directory in directories:
                if not self._watch(directory):
                    self._unwatchable.add(directory)
                    self._polled.update(self._files_in(directory))
                    if directory in self._dirs:
                        self._unwatched_trees.add(directory)
        return super().poll()

    # -- watches ------------------------------------------------------------

    def _watch(self, directory: str) -> bool:
        """Add the watch for ``directory``; False if it cannot have one."""
        if self._full_scans:
            return False
        try:
            wd = self._inotify.add_watch(directory, WATCH_MASK)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                self._watch_limit_reached(directory)
            return False
        self._wds[directory] = wd
        self._dirs_of.setdefault(wd, []).append(directory)
        return True

    def _watch_trees(self, candidates: Iterable[str] | None = None) -> None:
        """Watch tracked directories that have no watch yet."""
        for directory in list(self._dirs) if candidates is None else candidates:
            if directory in self._wds or self._watch(directory):
                self._unwatched_trees.discard(directory)
            else:
                self._unwatched_trees.add(directory)

    def _lose_watch(self, wd: int, mask: int) -> list[str]:
        """The directory of ``wd`` was deleted, moved or unmounted: stat its files from now on."""
        if mask & IN_MOVE_SELF:
            # The watch follows the moved directory; its events no longer match our paths.
            with contextlib.suppress(OSError):
                self._inotify.rm_watch(wd)
        lost = self._dirs_of.pop(wd, [])
        orphans: list[str] = []
        for directory in lost:
            del self._wds[directory]
            if directory in self._dirs:
                self._unwatched_trees.add(directory)
            self._unwatchable.add(directory)
            orphans.extend(self._files_in(directory))
        self._polled.update(orphans)
        return orphans

    def _files_in(self, directory: str) -> list[str]:
        """The watched files directly in ``directory`` (a scan: only when a watch is lost)."""
        prefix = os.path.join(directory, "")
        return [
            p
            for p in itertools.chain(self._stamps, self._fresh)
            if p.startswith(prefix) and os.sep not in p[len(prefix) :]
        ]

    def _watch_limit_reached(self, directory: str) -> None:
        self._full_scans = True
        log.warning(
            "reloadmw (pid=%d): cannot watch %r: the inotify watch limit is reached "
            "(%s = %s). Falling back to a stat pass over every watched file on each "
            "check. Raise the limit, e.g. 'sysctl %s=524288', or pass backend=\"stat\"",
            os.getpid(),
            directory,
            WATCHES_SYSCTL,
            _read_sysctl(WATCHES_SYSCTL),
            WATCHES_SYSCTL,
        )


def _parent(path: str) -> str:
    """The directory whose watch sees ``path`` (as in add_files; os.path.dirname is slower)."""
    return path.rpartition(os.sep)[0] or os.sep


def _read_sysctl(name: str) -> str:
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return f.read().strip()
    except OSError:
        return "unknown"
