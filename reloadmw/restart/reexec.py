"""Plain servers started as ``python app.py`` (wsgiref, waitress): re-execute the process."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Callable

from ..logs import log, prefix
from ..watch.start_time import EXEC_START_ENV

#: How long ``exec`` waits for a threaded server to finish its other requests.
EXEC_IDLE_TIMEOUT = 30.0
_IDLE_POLL = 0.01

IdleProbe = Callable[[], bool]


class ReExec:
    """Plain servers: re-execute this interpreter with the same argv.

    ``execv`` keeps the pid and closes every socket (Python opens them
    close-on-exec), then the new process imports the app afresh and binds
    the port again. When the server's threads can be watched (waitress),
    the exec waits until every response has been written; on a
    single-threaded server (wsgiref) it happens as soon as the response is
    closed, which is when it has been sent.
    """

    name = "exec"
    exits_process = True

    def __init__(self, idle: IdleProbe | None = None, timeout: float = EXEC_IDLE_TIMEOUT) -> None:
        self._idle = idle
        self._timeout = timeout

    def __call__(self, reason: Sequence[str]) -> None:
        command_line()  # fail here, in the request's thread, if there is none
        if self._idle is None:
            if threading.current_thread() is not threading.main_thread():
                raise RuntimeError(
                    f"{prefix()}not re-executing from server thread "
                    f"{threading.current_thread().name!r}: it would cut off the responses "
                    f"other threads are still writing. Use restart='auto' (it watches "
                    f"waitress's connections) or a single-threaded server"
                )
            reexec()
            return
        threading.Thread(
            target=self._exec_when_idle, args=(self._idle,), name="reloadmw-exec", daemon=True
        ).start()

    def _exec_when_idle(self, idle: IdleProbe) -> None:
        deadline = time.monotonic() + self._timeout
        while not idle() and time.monotonic() < deadline:
            time.sleep(_IDLE_POLL)
        if not idle():
            log.warning(
                "requests still running after %gs; re-executing anyway",
                self._timeout,
            )
        try:
            reexec()
        except OSError:
            log.exception(
                "re-executing %s failed; still serving the current code. "
                "Restart the server by hand",
                " ".join(command_line()),
            )


def command_line() -> list[str]:
    """The interpreter and arguments that started this process."""
    orig_argv: list[str] | None = getattr(sys, "orig_argv", None)  # Python 3.10+
    if orig_argv:
        return [sys.executable, *orig_argv[1:]]
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    flags = [f"-W{option}" for option in sys.warnoptions]
    if spec is not None and spec.name != "__main__":
        module = spec.name.removesuffix(".__main__")
        return [sys.executable, *flags, "-m", module, *sys.argv[1:]]
    if not sys.argv or not sys.argv[0]:
        raise RuntimeError(
            f"{prefix()}cannot re-execute: this interpreter has no "
            f"script in sys.argv. Start the server as 'python app.py', or pass restart= "
            f"another strategy"
        )
    return [sys.executable, *flags, *sys.argv]


def reexec() -> None:
    """Replace this process with a fresh run of the same command line."""
    argv = command_line()
    log.info("re-executing %s", " ".join(argv))
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    # Same pid and same kernel start time after execv: the new process takes
    # its start from here, so the files edited before now are not new to it.
    os.environ[EXEC_START_ENV] = f"{os.getpid()}:{time.time_ns()}"
    os.execv(sys.executable, argv)


def waitress_idle(environ: Mapping[str, object]) -> IdleProbe | None:
    """A probe telling when every waitress connection has sent its responses.

    waitress writes responses from its main thread after the app returns, so
    re-executing from the app's thread would cut them off.
    """
    probe = environ.get("waitress.client_disconnected")
    server = getattr(getattr(probe, "__self__", None), "server", None)
    channels = getattr(server, "active_channels", None)
    if not isinstance(channels, dict):
        return None

    def idle() -> bool:
        return all(
            not getattr(channel, "request", None)  # one being read
            and not getattr(channel, "requests", None)  # ones being served
            and not getattr(channel, "total_outbufs_len", 0)  # answers not yet sent
            for channel in list(channels.values())
        )

    return idle
