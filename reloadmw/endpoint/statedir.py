"""The state directory, where the processes of one app share the group marker and failure count.

By default it is ``$XDG_RUNTIME_DIR/reloadmw`` (a per-user directory no one
else can write) when that is set, else ``<tempdir>/reloadmw-<uid>``, where
another user may have created the name first. So it is checked whenever it
is used, not only at start-up: :meth:`StateDir.opened` walks the path from
``/`` one directory at a time with ``O_NOFOLLOW`` and checks each with
``fstat``. Every directory on the way must be writable by no one but root
and this user (or be sticky, like ``/tmp``), so nobody else can swap
anything on it, and the state directory itself must belong to this user.
The files in it are then reached through the descriptor the walk returns.
A :class:`StateDirError` names the squatter and the fix.

This needs POSIX ``*at`` calls and ``flock`` (:data:`SHARED`). Elsewhere
(Windows, where Apache runs one child process) nothing is shared: the
endpoint restarts the process that got the ``POST`` and counts failures in
memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator

_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
#: Can the processes of an app share state through the directory here (``*at`` calls, flock)?
SHARED = os.name == "posix" and {os.open, os.stat, os.mkdir, os.rename} <= os.supports_dir_fd


class StateDirError(ValueError):
    """The state directory (or a file in it) cannot be used safely: what, whose, and the fix."""


def described(error: Exception) -> str:
    """An error's message for a log line, which has its own ``reloadmw`` prefix."""
    return str(error).removeprefix("reloadmw: ")


def default_state_dir() -> str:
    """``$XDG_RUNTIME_DIR/reloadmw`` if that directory is this user's own, else the tempdir's."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    with contextlib.suppress(OSError):
        st = os.stat(runtime, follow_symlinks=False)
        if os.path.isabs(runtime) and stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid():
            return os.path.join(runtime, "reloadmw")
    return os.path.join(tempfile.gettempdir(), f"reloadmw-{os.geteuid()}")


def file_name(identity: str, kind: str) -> str:
    """The name of one app's ``kind`` of file in the state directory: a hash of its identity."""
    digest = hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{digest[:24]}.{kind}"


def owner(uid: int) -> str:
    """``uid 33 (www-data)``."""
    try:
        import pwd

        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def squatted(path: str, st: os.stat_result, what: str = "state_dir") -> StateDirError:
    """The error for ``path``, which is not this user's: it names the squatter and the fix."""
    if stat.S_ISLNK(st.st_mode):
        kind = "a symlink"
    else:
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a file"
    return StateDirError(
        f"reloadmw: {what} {path!r} is {kind} owned by {owner(st.st_uid)}, not by "
        f"{owner(os.geteuid())} that this server runs as (did another user make it first?). "
        f"Remove it (as root or as its owner), or {_FIX}"
    )


class StateDir:
    """One state directory, created if missing and checked at every use.

    :param path: the directory; its parent is resolved once, here, and every
        use walks the resolved path again.
    """

    def __init__(self, path: str) -> None:
        parent, name = os.path.split(os.path.abspath(path))
        self.path = os.path.join(os.path.realpath(parent), name)

    def check(self) -> None:
        """Create and check the directory now; raise StateDirError if it cannot be used."""
        with self.opened():
            pass

    @contextlib.contextmanager
    def opened(self) -> Iterator[int]:
        """A descriptor of the directory, found and checked from ``/`` down; closed after."""
        try:
            fd = self._walk()
        except OSError as error:
            raise StateDirError(
                f"reloadmw: state_dir {self.path!r} cannot be used ({error.strerror}); {_FIX}"
            ) from None
        try:
            yield fd
        finally:
            os.close(fd)

    def _walk(self) -> int:
        fd = os.open("/", _DIRECTORY)
        try:
            names = [name for name in self.path.split("/") if name]
            self._check("/", os.fstat(fd), last=not names)
            for number, name in enumerate(names, 1):
                last = number == len(names)
                if last:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, 0o700, dir_fd=fd)
                here = "/" + "/".join(names[:number])
                child = self._enter(fd, name, here)
                os.close(fd)
                fd = child
                self._check(here, os.fstat(fd), last)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _enter(self, fd: int, name: str, here: str) -> int:
        try:
            return os.open(name, _DIRECTORY | NOFOLLOW, dir_fd=fd)
        except OSError:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)  # what is there, and whose
            if st.st_uid not in (0, os.geteuid()):
                raise squatted(here, st, self._what(here)) from None
            if stat.S_ISDIR(st.st_mode):
                raise
            raise StateDirError(
                f"reloadmw: {self._what(here)} {here!r} is not a directory (or is a symlink); "
                f"remove it, or {_FIX}"
            ) from None

    def _check(self, here: str, st: os.stat_result, last: bool) -> None:
        me = os.geteuid()
        sticky = bool(st.st_mode & stat.S_ISVTX)
        if last and st.st_uid != me and not (st.st_uid == 0 and sticky):
            raise squatted(here, st)
        if st.st_uid not in (0, me):
            raise StateDirError(
                f"reloadmw: {self._what(here)} {here!r} is owned by {owner(st.st_uid)}, who could "
                f"swap what is below it; {_FIX}"
            )
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky:
            raise StateDirError(
                f"reloadmw: {self._what(here)} {here!r} is writable by other users (mode "
                f"{stat.S_IMODE(st.st_mode):#o}) and not sticky, so they could swap the state "
                f"directory; make it writable by its owner only, or {_FIX}"
            )
        if last:
            bits = stat.S_IWUSR | stat.S_IXUSR if st.st_uid == me else stat.S_IWOTH | stat.S_IXOTH
            if me != 0 and st.st_mode & bits != bits:
                raise StateDirError(
                    f"reloadmw: state_dir {here!r} is not writable by {owner(me)}; {_FIX}"
                )

    def _what(self, here: str) -> str:
        return "state_dir" if here == self.path else f"on the way to state_dir {self.path!r},"


_FIX = (
    "pass state_dir= a directory that only this user can write, in directories only it and "
    "root can write (such as /var/lib/reloadmw, owned by the server's user, mode 0700), or "
    "set XDG_RUNTIME_DIR"
)
