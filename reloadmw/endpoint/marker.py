"""The group restart marker: one file that every process of an app compares with one stat.

A POST to the endpoint with ``scope="group"`` replaces the marker file; every
other process of the same app sees its ``(st_mtime_ns, st_size, st_ino)``
change on its next request (or in mod_wsgi's ``reload_required`` hook) and
restarts. It needs no extra server, works for any number of processes, and
only needs a directory the daemon user can write: by default
``<tempdir>/reloadmw-<uid>``, not the WSGI script's directory.

Because the marker is in a directory other users may reach, the directory is
checked: it must be a real directory (not a symlink), owned by this user (or
root) and writable only by its owner, unless it is sticky (``/tmp``-like), in
which case only markers owned by this user count.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
import threading
import time

Signature = tuple[int, int, int]


def default_state_dir() -> str:
    """``<tempdir>/reloadmw-<uid>``: private to the user the daemons run as."""
    return os.path.join(tempfile.gettempdir(), f"reloadmw-{os.geteuid()}")


def marker_name(identity: str) -> str:
    """The marker's file name for one app, keyed by a hash of its identity."""
    digest = hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{digest[:24]}.generation"


def prepare_state_dir(path: str) -> bool:
    """Create ``path`` (0o700) if missing and check it is safe; True if it is shared (sticky).

    Raises ValueError naming the directory, the problem and the fix.
    """
    path = os.path.abspath(path)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        st = os.lstat(path)
    except OSError as error:
        raise ValueError(
            f"reloadmw: state_dir={path!r} cannot be used ({error.strerror}); pass state_dir= "
            f"a directory the server's user can create files in"
        ) from None
    fix = f"remove it, or pass state_dir= a directory owned by uid {os.geteuid()} with mode 0o700"
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"reloadmw: state_dir={path!r} is not a directory (or a symlink); {fix}")
    sticky = bool(st.st_mode & stat.S_ISVTX)
    if st.st_uid != os.geteuid() and not (st.st_uid == 0 and sticky):
        raise ValueError(f"reloadmw: state_dir={path!r} is owned by uid {st.st_uid}; {fix}")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky:
        raise ValueError(
            f"reloadmw: state_dir={path!r} is writable by other users (mode "
            f"{stat.S_IMODE(st.st_mode):#o}) and not sticky; {fix}"
        )
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"reloadmw: state_dir={path!r} is not writable by this user; {fix}")
    return sticky


class GenerationMarker:
    """One app's marker file: :meth:`bump` to restart the group, :meth:`claim` to notice."""

    def __init__(self, state_dir: str, identity: str, start_ns: int) -> None:
        self.state_dir = os.path.abspath(state_dir)
        self._shared = prepare_state_dir(self.state_dir)
        self.path = os.path.join(self.state_dir, marker_name(identity))
        self._lock = threading.Lock()
        self._seen = self._signature()
        # A bump after this process started may have come while it was still
        # importing the old code: treat it as new, like the file monitor does.
        self._stale = self._seen is not None and self._seen[0] > start_ns

    def changed(self) -> bool:
        """One stat: has the marker moved since this process last looked?"""
        return self._stale or self._signature() != self._seen

    def claim(self) -> bool:
        """True once per bump by another process: this process must restart."""
        if not self.changed():
            return False
        with self._lock:
            current = self._signature()
            if current == self._seen and not self._stale:
                return False  # another thread claimed it
            self._seen = current
            self._stale = False
            return current is not None

    def bump(self) -> None:
        """Tell every other process of the group to restart; this one is not told."""
        with self._lock:
            previous = self._signature()
            fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=self.state_dir)
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(f"{os.getpid()} {time.time_ns()}\n")
                # The mtime must move even within one clock tick.
                now = time.time_ns()
                mtime = now if previous is None else max(now, previous[0] + 1)
                os.utime(temp, ns=(mtime, mtime))
                os.replace(temp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
            self._seen = self._signature()
            self._stale = False

    def _signature(self) -> Signature | None:
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return None
        if self._shared and (st.st_uid != os.geteuid() or not stat.S_ISREG(st.st_mode)):
            return None  # planted by another user in a shared directory: not ours
        return (st.st_mtime_ns, st.st_size, st.st_ino)
