"""The group restart marker: one file that every process of an app compares with one stat.

A POST to the endpoint with ``scope="group"`` replaces the marker file; every
other process of the same app sees its ``(st_mtime_ns, st_size, st_ino)``
change on its next request (or in mod_wsgi's ``reload_required`` hook) and
restarts. It needs no extra server, works for any number of processes, and
only needs a directory the daemon user can write (see
:mod:`~reloadmw.endpoint.statedir`).

No clock decides whether the marker changed: a process compares what it sees
with what it saw (``!=``), like the file monitor. Only a process that was
still starting when the marker was replaced restarts for a marker it never
saw change, and that is decided on the boot clock written in the marker,
which no one can set or step: a marker whose mtime is in the future (a POST,
then a backwards clock step) restarts nothing more.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import threading
from time import time_ns

from ..clocks import BOOT_ID, boot_ns
from ..logs import log
from .statedir import (
    NOFOLLOW,
    StateDir,
    StateDirError,
    described,
    file_name,
    owner,
    squatted,
)

Signature = tuple[int, int, int]
_TICK_NS = 10**9  # mtimes moved forward, so a bump in one clock tick still moves the mtime


def marker_name(identity: str) -> str:
    """The marker's file name for one app, keyed by a hash of its identity."""
    return file_name(identity, "generation")


class GenerationMarker:
    """One app's marker file: :meth:`bump` to restart the group, :meth:`claim` to notice.

    :param state: the checked state directory.
    :param identity: names the app's marker (the same in every process).
    :param start_ns: when this process started (wall clock, as the file monitor takes it).
    """

    def __init__(self, state: StateDir, identity: str, start_ns: int) -> None:
        # The wall clock only says how long ago this process started.
        started = boot_ns() - (time_ns() - start_ns)
        self.state = state
        self.name = marker_name(identity)
        self.path = os.path.join(state.path, self.name)
        self._lock = threading.Lock()
        self._reported = ""
        self._seen = self._lstat()
        # A bump after this process started may have come while it was still
        # importing the old code: it counts, as an early edit does for the monitor.
        bumped = self._bumped_at()
        self._stale = bumped is not None and started < bumped <= boot_ns()

    def changed(self) -> bool:
        """One stat: has the marker moved since this process last looked?"""
        return self._stale or self._lstat() != self._seen

    def claim(self) -> bool:
        """True once per bump by another process: this process must restart."""
        if not self.changed():
            return False
        with self._lock:
            current = self._lstat()
            if current == self._seen and not self._stale:
                return False  # another thread claimed it
            verified = self._verified()  # the whole path, now that it matters
            self._seen = verified or current
            self._stale = False
            return verified is not None

    def bump(self) -> None:
        """Tell every other process of the group to restart; this one is not told.

        Raises StateDirError: the directory is not safe, or the marker cannot be written.
        """
        try:
            self._write()
        except OSError as error:
            raise StateDirError(
                f"reloadmw: {error.strerror} in state_dir {self.state.path!r}; make it "
                f"writable for {owner(os.geteuid())} or pass state_dir="
            ) from None

    def _write(self) -> None:
        with self._lock, self.state.opened() as fd:
            previous = self._stat_in(fd)
            now = time_ns()
            mtime = now
            if previous is not None and now <= previous.st_mtime_ns < now + _TICK_NS:
                mtime = previous.st_mtime_ns + 1
            temp = f".tmp-{os.getpid()}-{secrets.token_hex(4)}"
            out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o600, dir_fd=fd)
            try:
                with os.fdopen(out, "w") as f:
                    f.write(f"{os.getpid()} {BOOT_ID} {boot_ns()}\n")
                    f.flush()
                    os.utime(f.fileno(), ns=(mtime, mtime))
                os.replace(temp, self.name, src_dir_fd=fd, dst_dir_fd=fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=fd)
                raise
            self._seen = _signature(self._stat_in(fd))
            self._stale = False

    def _lstat(self) -> Signature | None:
        """The per-request look: one ``lstat`` of the path, checked further only on a change."""
        try:
            return _signature(os.stat(self.path, follow_symlinks=False))
        except OSError:
            return None

    def _verified(self) -> Signature | None:
        """The marker's signature, found through the checked directory; None if it is not ours."""
        try:
            with self.state.opened() as fd:
                return _signature(self._ours(self._stat_in(fd)))
        except (StateDirError, OSError) as error:
            if str(error) != self._reported:  # once, not on every request
                self._reported = str(error)
                log.warning("ignoring the group restart marker: %s", described(error))
            return None

    def _stat_in(self, fd: int) -> os.stat_result | None:
        try:
            return os.stat(self.name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def _ours(self, st: os.stat_result | None) -> os.stat_result | None:
        """``st`` if it is a marker this user wrote; raise StateDirError if it is something else."""
        if st is not None and st.st_uid != os.geteuid():
            raise squatted(self.path, st, "the group restart marker")
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise StateDirError(
                f"reloadmw: the group restart marker {self.path!r} is not a regular file; the "
                f"next POST replaces it"
            )
        return st

    def _bumped_at(self) -> int | None:
        """The boot-clock time written in the marker, if it is of this boot and ours."""
        try:
            with self.state.opened() as fd:
                if self._ours(self._stat_in(fd)) is None:
                    return None
                data = os.open(self.name, os.O_RDONLY | NOFOLLOW, dir_fd=fd)
                with os.fdopen(data, "rb") as f:
                    fields = f.read(200).split()
        except (StateDirError, OSError):
            return None  # the router reported an unusable directory at start-up
        if len(fields) != 3 or fields[1].decode("ascii", "replace") != BOOT_ID:
            return None  # an older format, or another boot: this process started after it
        return int(fields[2]) if fields[2].isdigit() else None


def _signature(st: os.stat_result | None) -> Signature | None:
    return None if st is None else (st.st_mtime_ns, st.st_size, st.st_ino)
