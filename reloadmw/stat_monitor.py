"""The portable backend: compare ``os.stat`` results on every poll."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from typing import Optional

from .patterns import IgnoreRules, Tree

log = logging.getLogger("reloadmw")

#: What identifies one version of a file: (st_mtime_ns, st_size, st_ino).
Stamp = Optional[tuple[int, int, int]]
_GONE: Stamp = None
#: A directory changed this recently may change again within the same timestamp
#: tick (a second on some filesystems) without its mtime moving: list it again.
_RECENT_S = 2.0


class StatMonitor:
    """Polls a prebuilt list of paths with ``os.stat``.

    The hot loop does nothing but stat and compare, so a poll costs about as
    much as the ``stat`` calls themselves. Directories of tracked trees are
    stat'ed too: a changed directory is listed again to find new files.
    """

    name = "stat"

    def __init__(self, start_ns: int, ignored: IgnoreRules) -> None:
        self._start_ns = start_ns
        self._ignored = ignored
        self._stamps: dict[str, Stamp] = {}
        self._fresh: list[str] = []
        self._dirs: dict[str, tuple[Stamp, Tree]] = {}
        self._unreadable: set[str] = set()

    def __len__(self) -> int:
        return len(self._stamps) + len(self._fresh)

    def add_files(self, paths: Sequence[str]) -> None:
        stamps = self._stamps
        self._fresh.extend(p for p in self._ignored.kept(paths) if p not in stamps)

    def add_tree(self, tree: Tree) -> None:
        self._fresh.extend(self._add_dir(tree.root, tree))

    def poll(self) -> dict[str, float]:
        changed: dict[str, float] = {}
        now = time.time()
        if self._dirs:
            self._poll_dirs(self._dirs, changed, now)
        self._compare(self._stamps.items(), changed, now)
        if self._fresh:
            self._baseline_fresh(changed, now)
        return changed

    def close(self) -> None:
        self._stamps.clear()
        self._dirs.clear()

    def _compare(
        self, entries: Iterable[tuple[str, Stamp]], changed: dict[str, float], now: float
    ) -> None:
        """The hot loop: stat each path and compare with its stamp, nothing more."""
        stat = os.stat
        stamps = self._stamps
        for path, old in entries:
            try:
                st = stat(path)
                new: Stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError as exc:
                new = self._unstattable(path, exc, old)
            if new != old:
                stamps[path] = new
                # ctime, which no tool can set back, dates a restored older copy
                # (cp -p, tar, rsync -t) to when it was written.
                changed[path] = now if new is None else min(max(new[0], st.st_ctime_ns) / 1e9, now)

    def _baseline_fresh(self, changed: dict[str, float], now: float) -> None:
        """First stat of new paths: a file saved after the process started is a change."""
        fresh, self._fresh = self._fresh, []
        now_ns = int(now * 1e9)
        for path in fresh:
            stamp = self._first_stamp(path)
            self._stamps[path] = stamp
            if stamp is not None and self._start_ns < stamp[0] <= now_ns:
                changed[path] = stamp[0] / 1e9

    def _first_stamp(self, path: str) -> Stamp:
        """The stamp a new path starts with (a subclass may note more about the file)."""
        return _stamp(path)

    def _unstattable(self, path: str, exc: OSError, old: Stamp) -> Stamp:
        if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
            self._unreadable.discard(path)
            return _GONE
        if path not in self._unreadable:
            self._unreadable.add(path)
            log.warning(
                "reloadmw (pid=%d): cannot stat %r (%s); it is not treated as changed "
                "until it can be read again",
                os.getpid(),
                path,
                exc.strerror or exc,
            )
        return old

    def _add_dir(self, path: str, tree: Tree) -> list[str]:
        """Watch directory ``path`` and everything below it; return the new files found."""
        if path in self._dirs or self._ignored(os.path.join(path, "x")):
            return []
        self._dirs[path] = (_stamp(path), tree)
        found = []
        try:
            entries = list(os.scandir(path))
        except OSError:
            return []
        for entry in entries:
            if _is_dir(entry):
                if not _loops_back(entry, path):
                    found.extend(self._add_dir(entry.path, tree))
            elif (
                entry.path not in self._stamps
                and not self._ignored(entry.path)
                and tree.match(entry.path)
            ):
                found.append(entry.path)
        return found

    def _poll_dirs(
        self, dirs: Iterable[str], changed: dict[str, float], now: float, relist: bool = False
    ) -> None:
        """Stat tracked directories; list a changed one again (or each, with ``relist``)."""
        waiting = set(self._fresh)  # found earlier: their first poll decides, not this listing
        for path in list(dirs):
            old, tree = self._dirs[path]
            new = _stamp(path)
            if new == old and not relist and not _recent(new, now):
                continue
            # Keep a vanished directory listed, so that its return is seen.
            del self._dirs[path]
            created = self._add_dir(path, tree) if new is not None else []
            self._dirs[path] = (new, tree)
            for file in created:
                if file in waiting:
                    continue
                self._stamps[file] = _stamp(file)
                changed[file] = now


def _recent(stamp: Stamp, now: float) -> bool:
    return stamp is not None and now - stamp[0] / 1e9 < _RECENT_S


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


def _stamp(path: str) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return _GONE
    return (st.st_mtime_ns, st.st_size, st.st_ino)
