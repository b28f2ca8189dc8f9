"""The Linux backend: the kernel says which watched directories changed.

A check that finds nothing is one ``poll(2)`` of the inotify descriptor, so it
costs the same whether 100 or 100,000 files are watched. Only the files named
by events are stat'ed, through the same :class:`~reloadmw.watch.stamps.StampTable`
as the stat backend; a full pass is the fallback when the kernel's event
queue overflowed or the watch limit was reached.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import time
import weakref
from collections.abc import Iterable, Sequence

from ..logs import log
from .inotify_kernel import (
    ARRIVED,
    ENTRIES,
    IN_MOVE_SELF,
    IN_Q_OVERFLOW,
    LOST,
    WATCH_MASK,
    WATCHES_SYSCTL,
    Event,
    Inotify,
    drain,
    open_inotify,
    read_sysctl,
)
from .patterns import IgnoreRules, Tree
from .stamps import Changes, StampTable


class InotifyMonitor:
    """Holds one inotify watch per directory and stats only the files events name.

    Files without a watch of their own (their directory could not be watched,
    or they are symlinks into another directory) are stat'ed on every check;
    after a queue overflow, or once the watch limit is reached, a check is a
    full pass. A forked child opens its own instance at its first check.

    :param inotify: an open inotify instance (tests inject one); by default
        :func:`open_inotify` makes it, and its OSError (``EMFILE``: too many
        instances) tells the caller that inotify cannot start.
    """

    name = "inotify"

    def __init__(self, start_ns: int, ignored: IgnoreRules, inotify: Inotify | None = None) -> None:
        self._table = StampTable(start_ns, ignored)
        self._use(inotify if inotify is not None else open_inotify())
        self._wds: dict[str, int] = {}  # watched directory -> watch descriptor
        self._dirs_of: dict[int, list[str]] = {}  # descriptor -> directories (symlinked twins)
        self._unwatchable: set[str] = set()  # directories of plain files that have no watch
        self._polled: set[str] = set()  # files without a watch: stat'ed on every check
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

    def __len__(self) -> int:
        return len(self._table)

    @property
    def newest_ns(self) -> int:
        return self._table.newest_ns

    def fileno(self) -> int:
        """The inotify file descriptor."""
        return self._fd

    def add_files(self, paths: Sequence[str]) -> None:
        # Watch first, baseline later (at the next poll): no edit falls in between.
        new = self._table.add(paths)
        for directory in dict.fromkeys([_parent(p) for p in new]):
            if directory not in self._wds and (
                directory in self._unwatchable or not self._watch(directory)
            ):
                self._unwatchable.add(directory)
        if self._unwatchable:
            self._polled.update(p for p in new if _parent(p) in self._unwatchable)

    def add_tree(self, tree: Tree) -> None:
        self._table.add_tree(tree)
        self._watch_trees()

    def poll(self) -> Changes:
        if self._pid != os.getpid():
            return self._after_fork()
        if self._ready.poll(0):
            return self._changes(drain(self._fd))
        table = self._table
        if (
            table.fresh
            or self._polled
            or table.links
            or table.unreadable
            or self._unwatched_trees
            or self._full_scans
        ):
            return self._changes([])
        return {}

    def close(self) -> None:
        self._table.clear()
        self._release()
        self._ready = select.poll()  # a poll after close finds nothing, not a closed fd

    # -- events -------------------------------------------------------------

    def _changes(self, events: Iterable[Event]) -> Changes:
        table = self._table
        files: set[str] = set()
        relist: set[str] = set()
        overflow = False
        for wd, mask, name in events:
            if mask & IN_Q_OVERFLOW:
                overflow = True
            elif mask & LOST:
                files.update(self._lose_watch(wd, mask))
            else:
                for directory in self._dirs_of.get(wd, ()):
                    if name:
                        path = os.path.join(directory, name)
                        files.add(path)
                        if mask & ARRIVED and path in table.stamps and os.path.islink(path):
                            table.links.add(path)
                    if mask & ENTRIES and directory in table.dirs:
                        relist.add(directory)
        if overflow or self._full_scans:
            changed = table.scan()
            self._watch_trees()
            return changed
        return self._check(files, relist)

    def _check(self, files: set[str], relist: set[str]) -> Changes:
        """Stat the files events named (and those without a watch); list changed trees."""
        table = self._table
        changed: Changes = {}
        now = time.time()
        known = len(table.dirs)
        if self._unwatched_trees:
            waiting = list(self._unwatched_trees)
            self._watch_trees(waiting)
            relist.update(d for d in waiting if d in self._wds)
            table.relist(self._unwatched_trees, changed, now)  # by stamp, as the stat backend
        if relist:
            table.relist(relist, changed, now, force=True)
        if len(table.dirs) != known or relist:
            self._watch_trees()  # subdirectories found meanwhile
        table.compare_paths(files | self._polled | table.links | table.unreadable, changed, now)
        if table.fresh:
            table.baseline(changed, now)
        return changed

    def _after_fork(self) -> Changes:
        """A forked worker shares its parent's event queue: each would take the other's events.

        So a child opens an instance of its own, watches the same directories,
        and does one full pass for whatever changed in between.
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
                "inotify cannot start in this forked process (%s); falling back to a stat "
                "pass over every watched file on each check",
                exc.strerror or exc,
            )
        else:
            for directory in directories:
                if not self._watch(directory):
                    self._unwatchable.add(directory)
                    self._polled.update(self._table.files_in(directory))
                    if directory in self._table.dirs:
                        self._unwatched_trees.add(directory)
        return self._table.scan()

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
        for directory in list(self._table.dirs) if candidates is None else candidates:
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
        orphans: list[str] = []
        for directory in self._dirs_of.pop(wd, []):
            del self._wds[directory]
            if directory in self._table.dirs:
                self._unwatched_trees.add(directory)
            self._unwatchable.add(directory)
            orphans.extend(self._table.files_in(directory))
        self._polled.update(orphans)
        return orphans

    def _watch_limit_reached(self, directory: str) -> None:
        self._full_scans = True
        log.warning(
            "cannot watch %r: the inotify watch limit is reached (%s = %s). Falling back to "
            "a stat pass over every watched file on each check. Raise the limit, e.g. "
            "'sysctl %s=524288', or pass backend=\"stat\"",
            directory,
            WATCHES_SYSCTL,
            read_sysctl(WATCHES_SYSCTL),
            WATCHES_SYSCTL,
        )


def _parent(path: str) -> str:
    """The directory whose watch sees ``path`` (os.path.dirname is slower)."""
    return path.rpartition(os.sep)[0] or os.sep
