"""The small contracts between the middleware and its parts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .patterns import Tree


class Monitor(Protocol):
    """Finds which watched files changed since it was last asked."""

    name: str

    def add_files(self, paths: Sequence[str]) -> None:
        """Watch these files; one saved after the process started counts as changed."""

    def add_tree(self, tree: Tree) -> None:
        """Watch every matching file under a directory, including files created later."""

    def poll(self) -> dict[str, float]:
        """Return the paths changed since the last poll, each with the wall time it changed."""

    def __len__(self) -> int:
        """Return how many files are watched."""

    def close(self) -> None:
        """Release any OS resources."""


class Strategy(Protocol):
    """One way of restarting the process (or server) so that fresh code is loaded."""

    name: str
    #: True when calling it ends this process, so it must never be called twice.
    exits_process: bool

    def __call__(self, reason: Sequence[str]) -> None:
        """Restart, given the changed paths (or a description) as the reason."""
