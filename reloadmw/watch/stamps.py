"""The stamp table both backends share: what each watched file looked like, and what changed.

A stamp is ``(st_mtime_ns, st_size, st_ino)``; a change is any difference.
:class:`StampTable` holds the stamps, the files added but not yet stat'ed
(their first stat is the baseline), and the tracked directories
(:class:`~reloadmw.watch.trees.TrackedDirs`), and offers the steps a backend
is built from: :meth:`~StampTable.add`, :meth:`~StampTable.compare`,
:meth:`~StampTable.baseline`, :meth:`~StampTable.relist` and
:meth:`~StampTable.walk_on`. The stat backend runs all of them on every poll;
the inotify backend runs them only on what the kernel named.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Iterable, Sequence
from stat import S_ISLNK
from typing import Callable

from ..logs import log
from .patterns import IgnoreRules, Tree
from .trees import Stamp, TrackedDirs, file_stamp, stat_stamp

Changes = dict[str, float]
#: What ``stamps.get`` gives for a path not stat'ed yet (None is a missing file's stamp).
_FRESH: Stamp = (-1, -1, -1)


class StampTable:
    """The watched files and tracked directories of one monitor.

    :param start_ns: when this process started; a file saved later than that
        is a change at its first stat.
    :param ignored: files and directories never watched.
    :param on_dir: called with each tracked directory when it is first found.
    """

    def __init__(
        self, start_ns: int, ignored: IgnoreRules, on_dir: Callable[[str], None] | None = None
    ) -> None:
        self._start_ns = start_ns
        self._ignored = ignored
        #: path -> stamp of every file stat'ed at least once.
        self.stamps: dict[str, Stamp] = {}
        #: paths added and not yet stat'ed (a dict: ordered, and each path once).
        self.fresh: dict[str, None] = {}
        self.trees = TrackedDirs(ignored, self._unknown, on_dir)
        #: tracked directory -> (its stamp, the trees it belongs to).
        self.dirs = self.trees.dirs
        #: paths whose stat failed for a reason other than their absence.
        self.unreadable: set[str] = set()
        #: paths that were symlinks at their first stat: their target may live
        #: in a directory that no inotify watch sees.
        self.links: set[str] = set()
        #: The newest file version this process knows (ns): each baseline that predates
        #: the start and each change seen since. The same in every process of an app.
        self.newest_ns = 0

    def __len__(self) -> int:
        return len(self.stamps) + len(self.fresh)

    def add(self, paths: Sequence[str]) -> list[str]:
        """Queue the new, not ignored ``paths`` for their baseline; return them."""
        new = self._unknown(list(dict.fromkeys(self._ignored.kept(paths))))
        self.fresh.update(dict.fromkeys(new))
        return new

    def add_tree(self, tree: Tree) -> list[str]:
        """Track ``tree``'s directories; queue and return the files found in them."""
        found = self.trees.add(tree)
        self.fresh.update(dict.fromkeys(found))
        return found

    def scan(self) -> Changes:
        """A full pass: tracked directories by stamp, every file, then the fresh ones."""
        changed: Changes = {}
        now = time.time()
        if self.dirs:
            self.relist(self.dirs, changed, now)
            self.walk_on(changed, now)
        self.compare(self.stamps.items(), changed, now)
        if self.fresh:
            self.baseline(changed, now)
        return changed

    def compare(self, entries: Iterable[tuple[str, Stamp]], changed: Changes, now: float) -> None:
        """The hot loop: stat each path, compare with its stamp, record what moved."""
        stat = os.stat
        stamps = self.stamps
        for path, old in entries:
            try:
                st = stat(path)
                new: Stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError as exc:
                new = self._unstattable(path, exc, old)
            if new != old:
                stamps[path] = new
                if new is None:
                    changed[path] = now
                    self._dated(_directory_version(path), now)
                    continue
                # ctime, which no tool can set back, dates a restored older copy
                # (cp -p, tar, rsync -t) to when it was written.
                changed[path] = min(max(new[0], st.st_ctime_ns) / 1e9, now)
                self.newest_ns = max(self.newest_ns, int(changed[path] * 1e9))

    def compare_paths(self, paths: Iterable[str], changed: Changes, now: float) -> None:
        """:meth:`compare` for some of the watched paths (others are skipped)."""
        stamps = self.stamps
        entries = [(p, stamp) for p in paths if (stamp := stamps.get(p, _FRESH)) is not _FRESH]
        self.compare(entries, changed, now)

    def baseline(self, changed: Changes, now: float) -> None:
        """First stat of the fresh paths: a file saved after the process started is a change.

        ``lstat`` first costs a plain file the same one syscall, and notes
        the symlinks in :attr:`links`.
        """
        fresh, self.fresh = self.fresh, {}
        now_ns = int(now * 1e9)
        for path in fresh:
            try:
                st = os.lstat(path)
                stamp: Stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
                if S_ISLNK(st.st_mode):
                    self.links.add(path)
                    stamp = file_stamp(path)
            except OSError:
                stamp = None
            self.stamps[path] = stamp
            if stamp is not None and self._start_ns < stamp[0] <= now_ns:
                changed[path] = stamp[0] / 1e9
            elif stamp is not None:  # loaded as it is; ctime dates a restored older copy
                self.newest_ns = max(self.newest_ns, stamp[0], st.st_ctime_ns)

    def relist(
        self, dirs: Iterable[str], changed: Changes, now: float, force: bool = False
    ) -> None:
        """Stat tracked directories; list a changed one again (or each, with ``force``).

        Files that appear are changes; new subdirectories wait for :meth:`walk_on`.
        """
        self._created(self.trees.relist(dirs, now, force), changed, now)

    def walk_on(self, changed: Changes, now: float) -> None:
        """List up to :data:`~reloadmw.watch.trees.WALK_STEP` entries of new subdirectories."""
        if self.trees.backlog:
            self._created(self.trees.step(), changed, now)

    def files_in(self, directories: Collection[str]) -> list[str]:
        """The watched files directly in any of ``directories`` (one scan of the table)."""
        return [
            p
            for p in (*self.stamps, *self.fresh)
            if (p.rpartition(os.sep)[0] or os.sep) in directories
        ]

    def clear(self) -> None:
        self.stamps.clear()
        self.trees.clear()

    def _unstattable(self, path: str, exc: OSError, old: Stamp) -> Stamp:
        if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
            self.unreadable.discard(path)
            return None
        if path not in self.unreadable:
            self.unreadable.add(path)
            log.warning(
                "cannot stat %r (%s); it is not treated as changed until it can be read again",
                path,
                exc.strerror or exc,
            )
        return old

    def _unknown(self, paths: list[str]) -> list[str]:
        """The ``paths`` neither stat'ed nor queued yet."""
        stamps, fresh = self.stamps, self.fresh
        return [p for p in paths if p not in stamps and p not in fresh]

    def _created(self, files: list[str], changed: Changes, now: float) -> None:
        for file in files:  # never a fresh one: its first stat decides, not this listing
            st = _stat(file)
            self.stamps[file] = stat_stamp(st)
            self._dated(_version(st), now)
            changed[file] = now

    def _dated(self, version_ns: int | None, now: float) -> None:
        """A change seen now makes the code at least ``version_ns`` new (never later than now).

        A file's version is the same in every process, unlike the moment each one sees it.
        """
        if version_ns is not None:
            self.newest_ns = max(self.newest_ns, min(version_ns, int(now * 1e9)))


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _version(st: os.stat_result | None) -> int | None:
    """The later of a stat result's mtime and ctime (ns); None for no result."""
    return None if st is None else max(st.st_mtime_ns, st.st_ctime_ns)


def _directory_version(path: str) -> int | None:
    """The version of the nearest directory above ``path`` that still exists.

    A deleted file has no version left, but its removal dated its directory.
    """
    directory = os.path.dirname(path)
    while True:
        version = _version(_stat(directory))
        parent = os.path.dirname(directory)
        if version is not None or parent == directory:
            return version
        directory = parent
