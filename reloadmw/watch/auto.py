"""What ``backend="auto"`` is on Linux: inotify, and stat polling where inotify is blind.

inotify sees the edits made through this kernel. Files on a network
filesystem, or a folder shared from a VM's or a container's host
(:data:`~reloadmw.watch.mounts.POLLED_TYPES`), are edited on the other side,
and no event comes. :class:`AutoMonitor` has the inotify backend poll the
directories on such mounts with stat, as it polls those it cannot watch, and
keeps the rest on inotify. It also watches the mount table: a mount that
appears, goes or is replaced under watched files counts as a change.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Callable

from ..logs import describe, log
from .inotify import InotifyMonitor
from .inotify_kernel import Inotify
from .mounts import MOUNTINFO, Mount, Mounts
from .patterns import IgnoreRules, Tree
from .stamps import Changes


class AutoMonitor:
    """The inotify backend, told which directories to poll, and told when mounts change.

    :param inotify: passed to :class:`~reloadmw.watch.inotify.InotifyMonitor`.
    :param mountinfo: returns the text of ``/proc/self/mountinfo`` (tests and the
        benchmark pass their own); by default it is read from ``/proc``.
    """

    def __init__(
        self,
        start_ns: int,
        ignored: IgnoreRules,
        inotify: Inotify | None = None,
        mountinfo: Callable[[], str] | None = None,
    ) -> None:
        #: "inotify", or "inotify+stat" once files on a polled mount are watched.
        self.name = "inotify"
        self._inotify = InotifyMonitor(start_ns, ignored, inotify, polled=self._polled)
        #: directory the backend asked about -> (its real path, the mount holding it)
        self._dirs: dict[str, tuple[str, Mount]] = {}
        self._named: set[str] = set()  # mount points a log line has named
        self._unnamed = False  # a polled mount no log line has named yet
        try:
            self._mounts: Mounts | None = Mounts(mountinfo)
        except OSError as exc:
            self._mounts = None
            log.warning(
                "cannot read %s (%s): files on network and shared mounts are watched with "
                'inotify, which may miss their edits; pass backend="stat" if it does',
                MOUNTINFO,
                exc.strerror or exc,
            )

    def __len__(self) -> int:
        return len(self._inotify)

    @property
    def newest_ns(self) -> int:
        return self._inotify.newest_ns

    def add_files(self, paths: Sequence[str]) -> None:
        self._inotify.add_files(paths)

    def add_tree(self, tree: Tree) -> None:
        self._inotify.add_tree(tree)

    def poll(self) -> Changes:
        mounts = self._mounts
        changed = self._remounted(mounts) if mounts is not None and mounts.changed() else {}
        changed.update(self._inotify.poll())
        if self._unnamed:
            self._name_polled()
        return changed

    def counts(self) -> tuple[int, int]:
        """(files watched with inotify, files on polled mounts, stat'ed on every check)."""
        polled = sum(self._polled_by_mount().values())
        return len(self) - polled, polled

    def close(self) -> None:
        self._inotify.close()
        if self._mounts is not None:
            self._mounts.close()

    def _polled(self, directory: str) -> bool:
        """The inotify backend asks: poll ``directory`` with stat rather than watch it?"""
        if self._mounts is None:
            return False
        known = self._dirs.get(directory)
        real = known[0] if known is not None else self._real_path(directory)
        mount = self._mounts.table.lookup(real)
        self._dirs[directory] = (real, mount)
        if not mount.polled:
            return False
        if mount.point not in self._named:
            self._unnamed = True
        return True

    def _real_path(self, directory: str) -> str:
        """``os.path.realpath``, cheaper below a directory asked about before (a tree's walk)."""
        parent, _, name = directory.rpartition(os.sep)
        known = self._dirs.get(parent)
        if known is None or not name or os.path.islink(directory):
            return os.path.realpath(directory)
        return os.path.join(known[0], name)

    def _remounted(self, mounts: Mounts) -> Changes:
        """The mount table changed: files whose mount is another one now count as changed."""
        try:
            mounts.reload()
        except OSError as exc:
            log.warning("cannot read %s again (%s)", MOUNTINFO, exc.strerror or exc)
            return {}
        moved: dict[tuple[Mount, Mount], list[str]] = {}
        for directory, (real, old) in list(self._dirs.items()):
            new = mounts.table.lookup(real)
            if new != old:
                moved.setdefault((old, new), []).append(directory)
                self._dirs[directory] = (real, new)
        if not moved:
            return {}
        changed: Changes = {}
        self._inotify.rewatch([d for dirs in moved.values() for d in dirs], changed)
        for (old, new), dirs in moved.items():
            log.info(
                "%s; the watched files in %s count as changed",
                _what_happened(old, new),
                describe(dirs),
            )
        return changed

    def _polled_by_mount(self) -> dict[Mount, int]:
        """How many files on each polled mount are stat'ed on every check."""
        counts: dict[Mount, int] = {}
        for path in self._inotify.polled_files():
            known = self._dirs.get(os.path.dirname(path))
            if known is not None and known[1].polled:
                counts[known[1]] = counts.get(known[1], 0) + 1
        return counts

    def _name_polled(self) -> None:
        """Log which files are polled and why, once files on a mount not named yet are."""
        counts = self._polled_by_mount()
        if not set(m.point for m in counts) - self._named:
            return  # its directories hold no watched file yet
        self._unnamed = False
        self._named.update(m.point for m in counts)
        self.name = "inotify+stat"
        polled = sum(counts.values())
        log.info(
            "%d of %d watched files are stat'ed on every check, since inotify misses "
            "edits made on the other side of their mounts: %s; the other %d are watched "
            "with inotify",
            polled,
            len(self),
            ", ".join(
                f"{m.point!r} ({m.fstype}, {n} file{'s' if n != 1 else ''})"
                for m, n in sorted(counts.items(), key=lambda item: item[0].point)
            ),
            len(self) - polled,
        )


def _what_happened(old: Mount, new: Mount) -> str:
    if old.point == new.point:
        return (
            f"the mount at {old.point!r} was replaced ({old.fstype} from {old.source!r}, "
            f"now {new.fstype} from {new.source!r})"
        )
    if len(new.point) > len(old.point):
        return f"{new.fstype} from {new.source!r} was mounted at {new.point!r}"
    return f"{old.point!r} ({old.fstype} from {old.source!r}) was unmounted"
