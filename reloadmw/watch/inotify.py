"""The Linux backend: the kernel says which watched directories changed.

A check that finds nothing is one ``poll(2)`` of the inotify descriptor, so it
costs the same whether 100 or 100,000 files are watched. Only the files named
by events are stat'ed, through the same :class:`~reloadmw.watch.stamps.StampTable`
as the stat backend. A directory without a watch (the watch limit was reached,
it is on a mount where events are missing, it was deleted) has its files
stat'ed on every check instead; a full pass is the fallback only when the
kernel's event queue overflowed.
"""

from __future__ import annotations

import errno
import os
import select
import time
import weakref
from collections.abc import Collection, Iterable, Sequence
from typing import Callable

from ..logs import log
from .inotify_kernel import (
    ARRIVED,
    ENTRIES,
    IN_Q_OVERFLOW,
    LOST,
    WATCHES_SYSCTL,
    Event,
    Inotify,
    Watches,
    drain,
    open_inotify,
    read_sysctl,
)
from .patterns import IgnoreRules, Tree
from .stamps import Changes, StampTable

#: Why ``add_watch`` failed for a directory that may get its watch later.
_NOT_YET = (errno.ENOENT, errno.ENOTDIR)


class InotifyMonitor:
    """Holds one inotify watch per directory and stats only the files events name.

    Files without a watch of their own (their directory has none, or they are
    symlinks into another directory) are stat'ed on every check; after a queue
    overflow a check is a full pass. A forked child opens its own instance at
    its first check.

    :param inotify: an open inotify instance (tests inject one); by default
        :func:`open_inotify` makes it, and its OSError (``EMFILE``: too many
        instances) tells the caller that inotify cannot start.
    :param polled: says which directories to poll with stat rather than watch
        (those on mounts whose edits raise no events); by default none.
    """

    name = "inotify"

    def __init__(
        self,
        start_ns: int,
        ignored: IgnoreRules,
        inotify: Inotify | None = None,
        polled: Callable[[str], bool] | None = None,
    ) -> None:
        self._table = StampTable(start_ns, ignored, self._tracked)
        self._use(inotify if inotify is not None else open_inotify())
        self._poll_instead = polled
        self._unwatched: set[str] = set()  # directories without a watch: their files are polled
        self._unwatched_trees: set[str] = set()  # tracked ones among them: relisted by stamp
        self._retry: set[str] = set()  # tracked ones that may get a watch later (missing now)
        self._polled: set[str] = set()  # files stat'ed on every check
        self._limit_hit = False  # the watch limit was reached (warned once)
        self._full_scans = False  # inotify could not start again in a forked child

    def _use(self, inotify: Inotify) -> None:
        """Read events from ``inotify``, in this process."""
        self._watches = Watches(inotify)
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

    def polled_files(self) -> set[str]:
        """The files stat'ed on every check (a copy)."""
        return set(self._polled)

    def add_files(self, paths: Sequence[str]) -> None:
        # Watch first, baseline later (at the next poll): no edit falls in between.
        new = self._table.add(paths)
        for directory in dict.fromkeys([_parent(p) for p in new]):
            if directory not in self._watches and (
                directory in self._unwatched or not self._watch(directory)
            ):
                self._unwatched.add(directory)
        self._poll_unwatched(new)

    def add_tree(self, tree: Tree) -> None:
        self._poll_unwatched(self._table.add_tree(tree))

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
            or table.trees.backlog
            or self._full_scans
        ):
            return self._changes([])
        return {}

    def rewatch(self, directories: Collection[str], changed: Changes) -> None:
        """Another filesystem is mounted at these directories now: watch or poll each anew.

        Every watched file in them counts as changed; tracked ones are listed again.
        """
        table = self._table
        for directory in directories:
            self._drop_watch(directory)
        for directory in directories:
            if directory in table.dirs:
                self._tracked(directory)
            elif not self._watch(directory):
                self._unwatched.add(directory)
        files = table.files_in(directories)
        self._polled.difference_update(files)
        now = time.time()
        table.compare_paths(files, changed, now)  # their new stamps: each counts once
        changed.update((f, now) for f in files if f not in changed)
        table.relist([d for d in directories if d in table.dirs], changed, now, force=True)
        self._poll_unwatched(changed)

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
                for directory in self._watches.dirs_of(wd):
                    if name:
                        path = os.path.join(directory, name)
                        files.add(path)
                        if mask & ARRIVED and path in table.stamps and os.path.islink(path):
                            table.links.add(path)
                    if mask & ENTRIES and directory in table.dirs:
                        relist.add(directory)
        changed = table.scan() if overflow or self._full_scans else self._check(files, relist)
        self._poll_unwatched(changed)
        return changed

    def _check(self, files: set[str], relist: set[str]) -> Changes:
        """Stat the files events named (and those without a watch); list changed trees."""
        table = self._table
        changed: Changes = {}
        now = time.time()
        for directory in list(self._retry):  # missing before: is it back?
            self._retry.discard(directory)
            if self._watch(directory):
                self._unwatched.discard(directory)
                self._unwatched_trees.discard(directory)
                relist.add(directory)
        if self._unwatched_trees:
            table.relist(self._unwatched_trees, changed, now)  # by stamp, as the stat backend
        if relist:
            table.relist(relist, changed, now, force=True)
        table.walk_on(changed, now)
        named = files or table.links or table.unreadable
        targets = files | self._polled | table.links | table.unreadable if named else self._polled
        table.compare_paths(targets, changed, now)
        if table.fresh:
            table.baseline(changed, now)
        return changed

    def _after_fork(self) -> Changes:
        """A forked worker shares its parent's event queue: each would take the other's events.

        So a child opens an instance of its own, watches the same directories,
        and does one full pass for whatever changed in between.
        """
        self._release()  # this process's copy of the descriptor only
        directories = self._watches.directories()
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
            lost = [d for d in directories if not self._watch(d)]
            self._unwatched.update(lost)
            self._unwatched_trees.update(d for d in lost if d in self._table.dirs)
            self._polled.update(self._table.files_in(set(lost)))
        return self._table.scan()

    # -- watches ------------------------------------------------------------

    def _watch(self, directory: str) -> bool:
        """Add the watch for ``directory``; False if it has none (its files are then polled)."""
        if self._full_scans or (self._poll_instead is not None and self._poll_instead(directory)):
            return False
        try:
            self._watches.add(directory)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                self._watch_limit_reached(directory)
            elif exc.errno in _NOT_YET and directory in self._table.dirs:
                self._retry.add(directory)
            return False
        return True

    def _tracked(self, directory: str) -> None:
        """A directory of a tree was found (before it is listed): watch it, or poll it."""
        if directory not in self._watches and not self._watch(directory):
            self._unwatched.add(directory)
            self._unwatched_trees.add(directory)

    def _poll_unwatched(self, files: Iterable[str]) -> None:
        """Of ``files``, stat those in a directory without a watch on every check."""
        if self._unwatched:
            unwatched = self._unwatched
            self._polled.update(f for f in files if _parent(f) in unwatched)

    def _drop_watch(self, directory: str) -> None:
        """Forget ``directory``'s watch (if any) and whether it had one."""
        self._watches.drop(directory)
        self._unwatched.discard(directory)
        self._unwatched_trees.discard(directory)
        self._retry.discard(directory)

    def _lose_watch(self, wd: int, mask: int) -> list[str]:
        """The directory of ``wd`` was deleted, moved or unmounted: stat its files from now on."""
        directories = self._watches.lose(wd, mask)
        for directory in directories:
            self._unwatched.add(directory)
            if directory in self._table.dirs:
                self._unwatched_trees.add(directory)
                self._retry.add(directory)
        orphans = self._table.files_in(set(directories)) if directories else []
        self._polled.update(orphans)
        return orphans

    def _watch_limit_reached(self, directory: str) -> None:
        if self._limit_hit:
            return
        self._limit_hit = True
        log.warning(
            "cannot watch %r: the inotify watch limit is reached (%s = %s). The files in "
            "directories without a watch are polled with stat on each check. Raise the "
            "limit, e.g. 'sysctl %s=524288'",
            directory,
            WATCHES_SYSCTL,
            read_sysctl(WATCHES_SYSCTL),
            WATCHES_SYSCTL,
        )


def _parent(path: str) -> str:
    """The directory whose watch sees ``path`` (os.path.dirname is slower)."""
    return path.rpartition(os.sep)[0] or os.sep
