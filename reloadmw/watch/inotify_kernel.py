"""The inotify kernel interface, as far as the backend uses it: event bits, the instance,
the watches it holds, reads."""

from __future__ import annotations

import contextlib
import os
from typing import Protocol

# Event bits from <sys/inotify.h> (kernel ABI).
IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_UNMOUNT = 0x2000
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_EXCL_UNLINK = 0x4000000

#: What a watch asks for: content changes only. Never open, access or
#: close-nowrite, so that reading a file (as the app does) is not an event.
WATCH_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
    | IN_EXCL_UNLINK
)
#: The watched directory itself went away: its watch is gone.
LOST = IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT
#: An entry appeared or vanished: a tracked directory must be listed again.
ENTRIES = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO
#: A name now points at another file.
ARRIVED = IN_CREATE | IN_MOVED_TO
#: Reads per check before the backlog is treated like an overflow.
MAX_READS = 16
READ_SIZE = 65536
WATCHES_SYSCTL = "fs.inotify.max_user_watches"


class Inotify(Protocol):
    """The part of ``inotify_simple.INotify`` this backend uses."""

    def fileno(self) -> int: ...

    def add_watch(self, path: str, mask: int) -> int: ...

    def rm_watch(self, wd: int) -> None: ...

    def close(self) -> None: ...


class Watches:
    """The watches of one inotify instance: which directories each descriptor stands for.

    One directory reached by two paths (a symlinked twin) has one descriptor.
    """

    def __init__(self, inotify: Inotify) -> None:
        self.inotify = inotify
        self._wds: dict[str, int] = {}  # watched directory -> watch descriptor
        self._dirs_of: dict[int, list[str]] = {}  # descriptor -> directories

    def __contains__(self, directory: str) -> bool:
        return directory in self._wds

    def directories(self) -> list[str]:
        return list(self._wds)

    def dirs_of(self, wd: int) -> list[str]:
        return self._dirs_of.get(wd, [])

    def add(self, directory: str) -> None:
        """Watch ``directory``; OSError if the kernel refuses."""
        wd = self.inotify.add_watch(directory, WATCH_MASK)
        self._wds[directory] = wd
        self._dirs_of.setdefault(wd, []).append(directory)

    def drop(self, directory: str) -> None:
        """Stop watching ``directory`` (a twin keeps the descriptor)."""
        wd = self._wds.pop(directory, None)
        if wd is None:
            return
        twins = self._dirs_of.get(wd, [])
        with contextlib.suppress(ValueError):
            twins.remove(directory)
        if not twins:
            self._dirs_of.pop(wd, None)
            with contextlib.suppress(OSError):  # gone with its filesystem already
                self.inotify.rm_watch(wd)

    def lose(self, wd: int, mask: int) -> list[str]:
        """The directory of ``wd`` was deleted, moved or unmounted: forget it; return its paths."""
        if mask & IN_MOVE_SELF:
            # The watch follows the moved directory; its events no longer match our paths.
            with contextlib.suppress(OSError):
                self.inotify.rm_watch(wd)
        directories = self._dirs_of.pop(wd, [])
        for directory in directories:
            del self._wds[directory]
        return directories


def open_inotify() -> Inotify:
    """A non-blocking inotify instance; raises ImportError or OSError if there is none."""
    from inotify_simple import INotify  # type: ignore[import-untyped,unused-ignore]

    inotify: Inotify = INotify(nonblocking=True)
    return inotify


Event = tuple[int, int, str]


def drain(fd: int) -> list[Event]:
    """Read every queued event: (watch descriptor, mask, name) of each.

    A queue still flowing after :data:`MAX_READS` reads comes back as one
    overflow: a full pass is cheaper than reading on.
    """
    from inotify_simple import parse_events

    data = b""
    for _ in range(MAX_READS):
        try:
            data += os.read(fd, READ_SIZE)
        except BlockingIOError:
            break
    else:
        return [(-1, IN_Q_OVERFLOW, "")]
    return [(e.wd, e.mask, e.name) for e in parse_events(data)]


def read_sysctl(name: str) -> str:
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return f.read().strip()
    except OSError:
        return "unknown"
