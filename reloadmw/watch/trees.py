"""The tracked directories of one monitor: walked at start, listed again on changes, bounded.

A ``track`` directory or glob is a :class:`~reloadmw.watch.patterns.Tree`. Its
directories are walked once, when it is added; afterwards a directory is listed
again only when it changed (an inotify event, or its stamp moved). The new
subdirectories such a listing finds are walked :data:`WALK_STEP` entries per
check, so that a big tree appearing at run time (a symlink to ``/usr``, an
``npm install``) never holds a request for long.

A directory is walked once per tree, however many paths lead to it: they are
told apart by ``(st_dev, st_ino)``, real directories are walked before
symlinks, and a symlink into a directory walked already is not followed.
Past :data:`MAX_TRACKED` directories and files the walk stops, with one
WARNING.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Callable, Optional

from ..logs import log
from .patterns import IgnoreRules, Tree

#: What identifies one version of a file or directory: ``(st_mtime_ns, st_size,
#: st_ino)``; None while it does not exist.
Stamp = Optional[tuple[int, int, int]]
#: A directory changed this recently may change again within the same timestamp
#: tick (a second on some filesystems) without its mtime moving: list it again.
RECENT_S = 2.0
#: The most directories and files one monitor tracks for its trees (every ``track``
#: directory and glob, and the directories frameworks register, together). Beyond
#: it, one WARNING, and nothing new is tracked: what was found stays watched.
MAX_TRACKED = 100_000
#: Directory entries listed at most per check for subdirectories found at run time.
WALK_STEP = 2_000

_Todo = list[tuple[str, tuple[Tree, ...]]]


class TrackedDirs:
    """Each tracked directory with its stamp and trees, and the walk that finds them.

    :param ignored: directories and files never tracked.
    :param unknown: of the files a listing matched, those not watched yet.
    :param on_dir: called with each directory when it is first tracked, before
        it is listed (the inotify backend watches it there).
    """

    def __init__(
        self,
        ignored: IgnoreRules,
        unknown: Callable[[list[str]], list[str]],
        on_dir: Callable[[str], None] | None = None,
    ) -> None:
        self._ignored = ignored
        self._unknown = unknown
        self._on_dir = on_dir
        #: tracked directory -> (its stamp, the trees it belongs to). Several
        #: trees can cover one directory: a ``track`` glob and a framework's
        #: template directory, say; a file counts if any of them matches it.
        self.dirs: dict[str, tuple[Stamp, tuple[Tree, ...]]] = {}
        #: (st_dev, st_ino) -> the first path it was walked under, and for which trees.
        self._walked: dict[tuple[int, int], tuple[str, tuple[Tree, ...]]] = {}
        self._todo: _Todo = []  # real directories still to list
        self._linked: _Todo = []  # symlinks to directories: followed once _todo is empty
        self.count = 0  # directories and files tracked so far
        self.full = False  # MAX_TRACKED was reached

    @property
    def backlog(self) -> bool:
        """Directories are waiting to be listed."""
        return bool(self._todo or self._linked)

    def add(self, tree: Tree) -> list[str]:
        """Track ``tree``: walk it to the end (or the bound); return its files not watched yet."""
        self._todo.append((tree.root, (tree,)))
        return self.walk(None)

    def relist(self, dirs: Iterable[str], now: float, force: bool = False) -> list[str]:
        """Stat tracked directories; list a changed one again (or each, with ``force``).

        Returns the files that appeared; the subdirectories that appeared wait
        for :meth:`walk`. A vanished directory stays tracked, so that its
        return is seen.
        """
        found: list[str] = []
        for path in list(dirs):
            old, trees = self.dirs[path]
            new = file_stamp(path)
            if new == old and not force and not _recent(new, now):
                continue
            self.dirs[path] = (new, trees)
            if new is not None:
                self._list(path, trees, found)
        return found

    def step(self) -> list[str]:
        """List waiting directories, about :data:`WALK_STEP` entries; return new files."""
        return self.walk(WALK_STEP)

    def walk(self, budget: int | None) -> list[str]:
        """List waiting directories, about ``budget`` entries (None: all); return new files."""
        found: list[str] = []
        listed = 0
        while not self.full and (budget is None or listed < budget):
            waiting = self._todo or self._linked
            if not waiting:
                break
            path, trees = waiting.pop()
            trees = self._enter(path, trees)
            if trees:
                listed += self._list(path, trees, found)
        return found

    def clear(self) -> None:
        self.dirs.clear()
        self._walked.clear()
        del self._todo[:], self._linked[:]

    def _enter(self, path: str, trees: tuple[Tree, ...]) -> tuple[Tree, ...]:
        """Track ``path`` for those of ``trees`` that have not walked it yet; return those."""
        if self._ignored.ignores_dir(path):
            return ()
        known = self.dirs.get(path)
        if known is not None:
            trees = tuple(t for t in trees if t not in known[1])
            if not trees:
                return ()
        elif self.full:
            return ()
        try:
            st: os.stat_result | None = os.stat(path)
        except OSError:
            st = None  # a tree's root may not exist yet: tracked, so that its creation is seen
        if st is not None:
            trees = self._first_walk(path, (st.st_dev, st.st_ino), trees)
            if not trees:
                return ()
        if known is not None:
            self.dirs[path] = (known[0], known[1] + trees)
            return trees
        self.dirs[path] = (stat_stamp(st), trees)
        self._count(1, path)
        if self._on_dir is not None:
            self._on_dir(path)
        return trees

    def _first_walk(
        self, path: str, identity: tuple[int, int], trees: tuple[Tree, ...]
    ) -> tuple[Tree, ...]:
        """Of ``trees``, those that have not walked this directory under any path yet."""
        first = self._walked.get(identity)
        # A directory deleted since may have passed its inode number on.
        if first is not None and (first[0] == path or _identity(first[0]) == identity):
            trees = tuple(t for t in trees if t not in first[1])
            if trees:
                self._walked[identity] = (first[0], first[1] + trees)
            return trees
        self._walked[identity] = (path, trees)
        return trees

    def _list(self, path: str, trees: tuple[Tree, ...], found: list[str]) -> int:
        """List one directory: queue its subdirectories, add its new files; return its size."""
        try:
            entries = list(os.scandir(path))
        except OSError:
            return 0
        files = []
        for entry in entries:
            if not _is_dir(entry):
                files.append(entry.path)
            elif not entry.is_symlink():
                self._todo.append((entry.path, trees))
            elif not _loops_back(entry, path):
                self._linked.append((entry.path, trees))
        if not self.full:
            kept = self._ignored.kept(files)
            new = self._unknown([p for p in kept if any(t.match(p) for t in trees)])
            found.extend(new)
            self._count(len(new), path)
        return len(entries)

    def _count(self, added: int, where: str) -> None:
        self.count += added
        if self.count < MAX_TRACKED or self.full:
            return
        self.full = True
        del self._todo[:], self._linked[:]
        log.warning(
            "stopped tracking new files at %d directories and files (reloadmw.watch.trees."
            "MAX_TRACKED), while listing %r: those found stay watched, further ones are not. "
            "Track less: a narrower directory, a glob such as 'static/**/*.css', or ignore= "
            "patterns for the big directories",
            self.count,
            where,
        )


def file_stamp(path: str) -> Stamp:
    try:
        return stat_stamp(os.stat(path))
    except OSError:
        return None


def stat_stamp(st: os.stat_result | None) -> Stamp:
    """The stamp of a stat result; None for no result (a path that cannot be stat'ed)."""
    return None if st is None else (st.st_mtime_ns, st.st_size, st.st_ino)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _recent(stamp: Stamp, now: float) -> bool:
    return stamp is not None and now - stamp[0] / 1e9 < RECENT_S


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link to itself (ELOOP): not a directory to walk
        return False


def _loops_back(entry: os.DirEntry[str], parent: str) -> bool:
    """True for a symlink to ``parent`` or above it: following it would walk outside the tree."""
    target = os.path.realpath(entry.path)
    here = os.path.realpath(parent)
    return here == target or here.startswith(os.path.join(target, ""))
