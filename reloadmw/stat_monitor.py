"""The portable backend: compare ``os.stat`` results on every poll."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Callable, Optional

from .patterns import Tree

log = logging.getLogger("reloadmw")

#: What identifies one version of a file: (st_mtime_ns, st_size, st_ino).
Stamp = Optional[tuple[int, int, int]]
_GONE: Stamp = None


class StatMonitor:
    """Polls a prebuilt list of paths with ``os.stat``.

    The hot loop does nothing but stat and compare, so a poll costs about as
    much as the ``stat`` calls themselves. Directories of tracked trees are
    stat'ed too: a changed directory is listed again to find new files.
    """

    name = "stat"

    def __init__(self, start_ns: int, ignored: Callable[[str], bool]) -> None:
        self._start_ns = start_ns
        self._ignored = ignored
        self._stamps: dict[str, Stamp] = {}
        self._fresh: list[str] = []
        self._dirs: dict[str, tuple[Stamp, Tree]] = {}
        self._unreadable: set[str] = set()

    def __len__(self) -> int:
        return len(self._stamps) + len(self._fresh)

    def add_files(self, paths: Sequence[str]) -> None:
        self._fresh.extend(p for p in paths if p not in self._stamps)

    def add_tree(self, tree: Tree) -> None:
        self._fresh.extend(self._add_dir(tree.root, tree))

    def poll(self) -> dict[str, float]:
        changed: dict[str, float] = {}
        now = time.time()
        if self._dirs:
            self._poll_dirs(changed, now)
        stat = os.stat
        stamps = self._stamps
        for path, old in stamps.items():
            try:
                st = stat(path)
                new: Stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError as exc:
                new = self._unstattable(path, exc, old)
            if new != old:
                stamps[path] = new
                changed[path] = now if new is None else min(new[0] / 1e9, now)
        if self._fresh:
            self._baseline_fresh(changed, now)
        return changed

    def close(self) -> None:
        self._stamps.clear()
        self._dirs.clear()

    def _baseline_fresh(self, changed: dict[str, float], now: float) -> None:
        """First stat of new paths: a file saved after the process started is a change."""
        fresh, self._fresh = self._fresh, []
        now_ns = int(now * 1e9)
        for path in fresh:
            stamp = _stamp(path)
            self._stamps[path] = stamp
            if stamp is not None and self._start_ns < stamp[0] <= now_ns:
                changed[path] = stamp[0] / 1e9

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
            if entry.is_dir():
                found.extend(self._add_dir(entry.path, tree))
            elif (
                entry.path not in self._stamps
                and not self._ignored(entry.path)
                and tree.match(entry.path)
            ):
                found.append(entry.path)
        return found

    def _poll_dirs(self, changed: dict[str, float], now: float) -> None:
        for path, (old, tree) in list(self._dirs.items()):
            new = _stamp(path)
            if new == old:
                continue
            # Keep a vanished directory listed, so that its return is seen.
            del self._dirs[path]
            created = self._add_dir(path, tree) if new is not None else []
            self._dirs[path] = (new, tree)
            for file in created:
                self._stamps[file] = _stamp(file)
                changed[file] = now


def _stamp(path: str) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return _GONE
    return (st.st_mtime_ns, st.st_size, st.st_ino)
