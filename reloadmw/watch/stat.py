"""The portable backend: stat every watched file on every poll."""

from __future__ import annotations

from collections.abc import Sequence

from .patterns import IgnoreRules, Tree
from .stamps import Changes, StampTable


class StatMonitor:
    """Polls a prebuilt list of paths with ``os.stat``.

    The hot loop does nothing but stat and compare, so a poll costs about as
    much as the ``stat`` calls themselves. Directories of tracked trees are
    stat'ed too: a changed directory is listed again to find new files.
    """

    name = "stat"

    def __init__(self, start_ns: int, ignored: IgnoreRules) -> None:
        self._table = StampTable(start_ns, ignored)

    def __len__(self) -> int:
        return len(self._table)

    @property
    def newest_ns(self) -> int:
        return self._table.newest_ns

    def add_files(self, paths: Sequence[str]) -> None:
        self._table.add(paths)

    def add_tree(self, tree: Tree) -> None:
        self._table.add_tree(tree)

    def poll(self) -> Changes:
        return self._table.scan()

    def close(self) -> None:
        self._table.clear()
