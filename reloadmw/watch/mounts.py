"""Which filesystem a directory is on, from ``/proc/self/mountinfo``, and when that changes.

inotify reports the changes made through this kernel. On a network filesystem,
or a folder that a VM or a container runtime shares from its host, the edits
are made on the other side and never pass through it: no event comes, so the
files there must be polled with stat. :data:`POLLED_TYPES` lists those
filesystems, in one place.
"""

from __future__ import annotations

import os
import re
import select
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Callable

MOUNTINFO = "/proc/self/mountinfo"

#: Filesystem types on which inotify misses edits made on the other side. A
#: FUSE type ``fuse.<name>`` (``fuse.sshfs``) counts as ``fuse``.
POLLED_TYPES = frozenset(
    {
        # FUSE: bindfs, sshfs, rclone, s3fs, gcsfuse, Docker Desktop's grpcfuse and
        # osxfs, VMware's vmhgfs-fuse. The daemon serves files changed behind the mount.
        "fuse",
        # NFS: writes by the server and by other clients.
        "nfs",
        "nfs4",
        # SMB/CIFS shares: Windows hosts, Samba, some VM shared folders.
        "cifs",
        "smb3",
        # 9P: WSL2's Windows drives (/mnt/c), QEMU's and Podman's virtio-9p folders.
        "9p",
        # WSL1's Windows drives.
        "drvfs",
        # VirtualBox shared folders (Vagrant's default there).
        "vboxsf",
        # VMware shared folders, the older kernel module.
        "vmhgfs",
        # Parallels Desktop shared folders.
        "prl_fs",
        # virtio-fs: Docker Desktop's and Lima's file sharing, Kata Containers.
        "virtiofs",
        # Cluster and network filesystems: writes made on other nodes.
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "beegfs",
        "afs",
        "ocfs2",
        "gfs2",
    }
)
# Not listed: fuseblk (ntfs-3g, exFAT on a local disk), whose edits all pass through this kernel.

_ESCAPED = re.compile(r"\\([0-7]{3})")  # the kernel writes " ", tab, newline and "\" as octal


@dataclass(frozen=True)
class Mount:
    """One line of ``mountinfo``: a filesystem mounted at ``point``.

    The kernel hands a freed mount id (and device number) to the next mount,
    so unmounting and mounting the same source again can give an equal Mount.
    """

    id: int
    parent: int
    device: str
    point: str
    fstype: str
    source: str

    @property
    def polled(self) -> bool:
        """inotify misses edits made on the other side of this mount."""
        return self.fstype.partition(".")[0] in POLLED_TYPES


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts that ``/proc/self/mountinfo`` lists, in its order; odd lines are skipped.

    A line is ``id parent major:minor root point options [optional...] - type
    source super-options`` (proc(5)).
    """
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            dash = fields.index("-", 6)
            mounts.append(
                Mount(
                    int(fields[0]),
                    int(fields[1]),
                    fields[2],
                    _unescape(fields[4]),
                    fields[dash + 1],
                    _unescape(fields[dash + 2]),
                )
            )
        except (ValueError, IndexError):
            continue
    return mounts


#: What a table without a mount point above a path says about it (no ``/``: no /proc).
UNKNOWN = Mount(0, 0, "0:0", "/", "unknown", "unknown")


class MountTable:
    """The mounts of this process, looked up by the longest mount point that holds a path."""

    def __init__(self, mounts: Iterable[Mount]) -> None:
        stacks: dict[str, list[Mount]] = {}
        for mount in mounts:
            stacks.setdefault(mount.point, []).append(mount)
        self._at = {point: _top(stack) for point, stack in stacks.items()}

    def lookup(self, path: str) -> Mount:
        """The mount that holds ``path`` (absolute, symlinks resolved)."""
        at = self._at
        while True:
            mount = at.get(path)
            if mount is not None:
                return mount
            if path in ("/", ""):
                return UNKNOWN
            path = path.rpartition("/")[0] or "/"


class Mounts:
    """This process's mount table: parsed once, and again only when the kernel says it changed.

    The kernel marks ``/proc/self/mountinfo`` readable with ``POLLPRI`` after
    any mount or unmount in the process's namespace, so a check costs one
    ``poll(2)``.

    :param read: returns the text of ``mountinfo`` (tests and the benchmark
        pass their own); by default it is read from ``/proc``.
    """

    def __init__(self, read: Callable[[], str] | None = None) -> None:
        self._read = read if read is not None else read_mountinfo
        self._open()
        self.table = MountTable(parse_mountinfo(self._read()))

    def changed(self) -> bool:
        """True once after each change of the mount table (and in a forked child)."""
        if self._pid != os.getpid():
            self._release()  # the parent's descriptor: each process needs its own
            self._open()
            return True
        return bool(self._ready.poll(0))

    def reload(self) -> None:
        """Read the mount table again; OSError if it cannot be read."""
        self.table = MountTable(parse_mountinfo(self._read()))

    def close(self) -> None:
        self._release()
        self._ready = select.poll()

    def _open(self) -> None:
        self._pid = os.getpid()
        self._ready = select.poll()
        try:
            fd = os.open(MOUNTINFO, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._release: Callable[[], object] = lambda: None  # no /proc: changes go unseen
            return
        self._release = weakref.finalize(self, os.close, fd)
        self._ready.register(fd, select.POLLPRI)


def read_mountinfo() -> str:
    with open(MOUNTINFO, "rb") as f:
        return os.fsdecode(f.read())


def _unescape(field: str) -> str:
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 8)), field) if "\\" in field else field


def _top(stack: list[Mount]) -> Mount:
    """Of the mounts at one point, the one on top: no other is mounted on it."""
    below = {mount.parent for mount in stack}
    return next((m for m in reversed(stack) if m.id not in below), stack[-1])
