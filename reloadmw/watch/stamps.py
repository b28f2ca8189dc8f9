"""The stamp table both backends share: what each watched file looked like, and what changed.

A stamp is ``(st_mtime_ns, st_size, st_ino)``; a change is any difference.
:class:`StampTable` holds the stamps, the files added but not yet stat'ed
(their first stat is the baseline), and the tracked directories, and offers
the steps a backend is built from: :meth:`~StampTable.add`,
:meth:`~StampTable.compare`, :meth:`~StampTable.baseline` and
:meth:`~StampTable.relist`. The stat backend runs all of them on every
poll; the inotify backend runs them only on what the kernel named.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from stat import S_ISLNK
from typing import Optional

from ..logs import log
from .patterns import IgnoreRules, Tree

#: What identifies one version of a file; None while it does not exist.
Stamp = Optional[tuple[int, int, int]]
#: A directory changed this recently may change again within the same timestamp
#: tick (a second on some filesystems) without its mtime moving: list it again.
RECENT_S = 2.0
Changes = dict[str, float]


class StampTable:
    """The watched files and tracked directories of one monitor.

    :param start_ns: when this process started; a file saved later than that
        is a change at its first stat.
    :param ignored: files and directories never watched.
    """

    def __init__(self, start_ns: int, ignored: IgnoreRules) -> None:
        self._start_ns = start_ns
        self._ignored = ignored
        #: path -> stamp of every file stat'ed at least once.
        self.stamps: dict[str, Stamp] = {}
        #: paths added and not yet stat'ed (a dict: ordered, and each path once).
        self.fresh: dict[str, None] = {}
        #: tracked directory -> (its stamp, the trees it belongs to). Several
        #: trees can cover one directory: a ``track`` glob and a framework's
        #: template directory, say; a file counts if any of them matches it.
        self.dirs: dict[str, tuple[Stamp, tuple[Tree, ...]]] = {}
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
        stamps, fresh = self.stamps, self.fresh
        new = [
            p
            for p in dict.fromkeys(self._ignored.kept(paths))
            if p not in stamps and p not in fresh
        ]
        fresh.update(dict.fromkeys(new))
        return new

    def add_tree(self, tree: Tree) -> list[str]:
        """Track ``tree``'s directories; queue and return the files found in them."""
        found = self._walk(tree.root, (tree,))
        self.fresh.update(dict.fromkeys(found))
        return found

    def scan(self) -> Changes:
        """A full pass: tracked directories by stamp, every file, then the fresh ones."""
        changed: Changes = {}
        now = time.time()
        if self.dirs:
            self.relist(self.dirs, changed, now)
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
                    continue
                # ctime, which no tool can set back, dates a restored older copy
                # (cp -p, tar, rsync -t) to when it was written.
                changed[path] = min(max(new[0], st.st_ctime_ns) / 1e9, now)
                self.newest_ns = max(self.newest_ns, int(changed[path] * 1e9))

    def compare_paths(self, paths: Iterable[str], changed: Changes, now: float) -> None:
        """:meth:`compare` for some of the watched paths (others are skipped)."""
        stamps = self.stamps
        self.compare([(p, stamps[p]) for p in paths if p in stamps], changed, now)

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

        Files that appear are changes. A vanished directory stays tracked, so
        that its return is seen.
        """
        for path in list(dirs):
            old, trees = self.dirs[path]
            new = file_stamp(path)
            if new == old and not force and not _recent(new, now):
                continue
            del self.dirs[path]
            created = self._walk(path, trees) if new is not None else []
            self.dirs[path] = (new, trees)
            for file in created:  # never a fresh one: its first stat decides, not this listing
                self.stamps[file] = file_stamp(file)
                changed[file] = now

    def files_in(self, directory: str) -> list[str]:
        """The watched files directly in ``directory`` (a scan of the table)."""
        prefix = os.path.join(directory, "")
        return [
            p
            for p in (*self.stamps, *self.fresh)
            if p.startswith(prefix) and os.sep not in p[len(prefix) :]
        ]

    def clear(self) -> None:
        self.stamps.clear()
        self.dirs.clear()

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

    def _walk(self, path: str, trees: tuple[Tree, ...]) -> list[str]:
        """Track directory ``path`` and everything below it for ``trees``; return new files.

        A directory tracked already is listed again only for the trees it did
        not belong to yet.
        """
        if self._ignored.ignores_dir(path):
            return []
        known = self.dirs.get(path)
        if known is None:
            self.dirs[path] = (file_stamp(path), trees)
        else:
            trees = tuple(t for t in trees if t not in known[1])
            if not trees:
                return []
            self.dirs[path] = (known[0], known[1] + trees)
        try:
            entries = list(os.scandir(path))
        except OSError:
            return []
        files = []
        found = []
        for entry in entries:
            if not _is_dir(entry):
                files.append(entry.path)
            elif not _loops_back(entry, path):
                found.extend(self._walk(entry.path, trees))
        stamps, fresh = self.stamps, self.fresh
        found.extend(
            p
            for p in self._ignored.kept(files)
            if p not in stamps and p not in fresh and any(t.match(p) for t in trees)
        )
        return found


def file_stamp(path: str) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _recent(stamp: Stamp, now: float) -> bool:
    return stamp is not None and now - stamp[0] / 1e9 < RECENT_S


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link to itself (ELOOP): not a directory to walk
        return False


def _loops_back(entry: os.DirEntry[str], parent: str) -> bool:
    """True for a symlink to ``parent`` or above it: following it would never end."""
    if not entry.is_symlink():
        return False
    target = os.path.realpath(entry.path)
    here = os.path.realpath(parent)
    return here == target or here.startswith(os.path.join(target, ""))
