"""Restart strategies for servers other than mod_wsgi: gunicorn, uWSGI, plain servers.

:func:`choose_server` picks one from the WSGI environ of the request that saw
the change; :data:`SERVER_STRATEGIES` adds their names to ``restart=``.

- ``gunicorn``: SIGHUP to the arbiter, which starts fresh workers and stops
  the old ones gracefully, so every worker moves to the new code together.
- ``uwsgi``: ``uwsgi.reload()``, uWSGI's own graceful reload.
- ``exec``: a server started as ``python app.py`` (wsgiref, waitress)
  re-executes the same interpreter and argv once the response has left.
- ``hupper``: under ``pserve --reload`` (or any hupper monitor) the
  supervisor restarts the worker; reloadmw asks it to and does no more.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Callable

from . import startup
from .hup_record import hang_up_once

if TYPE_CHECKING:
    from .interfaces import Strategy

log = logging.getLogger("reloadmw")

#: How long ``exec`` waits for a threaded server to finish its other requests.
EXEC_IDLE_TIMEOUT = 30.0
_IDLE_POLL = 0.01


class GunicornReload:
    """gunicorn: SIGHUP to the arbiter (the parent process).

    The arbiter starts a new set of workers, then sends SIGTERM to the old
    ones, which finish the request they are serving (within
    ``--graceful-timeout``) and exit. The listening socket stays open, so no
    connection is refused.
    """

    name = "gunicorn"
    exits_process = True

    def __call__(self, reason: Sequence[str]) -> None:
        arbiter = os.getppid()
        if not _is_gunicorn(arbiter):
            raise RuntimeError(
                f"reloadmw (pid={os.getpid()}): parent process {arbiter} is not a gunicorn "
                f"arbiter, so SIGHUP would not restart the workers. Run under gunicorn, or "
                f"pass restart= another strategy"
            )
        if startup.imported_before_start():
            raise RuntimeError(
                f"reloadmw (pid={os.getpid()}): the app was loaded in the gunicorn arbiter "
                f"(pid={arbiter}) before this worker started (--preload / preload_app), so "
                f"SIGHUP would start workers with the same old code. Drop --preload in "
                f"development, or restart gunicorn itself"
            )
        if not hang_up_once(arbiter, reason):
            log.info(
                "reloadmw (pid=%d): another gunicorn worker already sent SIGHUP for this "
                "change; the arbiter is replacing this worker",
                os.getpid(),
            )


def _is_gunicorn(pid: int) -> bool:
    if pid <= 1:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"gunicorn" in f.read()
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return False  # procfs is there, so the parent is gone
    except OSError:
        pass
    # No procfs (macOS, BSD): a gunicorn worker is forked from the arbiter.
    return "gunicorn.arbiter" in sys.modules


class UwsgiReload:
    """uWSGI: ``uwsgi.reload()``, a graceful reload of the whole instance.

    The master lets each worker finish its request, then reloads (without
    ``lazy-apps`` it re-executes itself and imports the app again). Its
    sockets stay open across the reload, so connections wait rather than fail.
    """

    name = "uwsgi"
    exits_process = True

    def __call__(self, reason: Sequence[str]) -> None:
        uwsgi = importlib.import_module("uwsgi")  # exists only inside uWSGI
        if not uwsgi.reload():
            raise RuntimeError(
                f"reloadmw (pid={os.getpid()}): uwsgi.reload() failed; see the uWSGI log. "
                f"Run uWSGI with --master so that it can reload"
            )


class HupperReload:
    """Under hupper (``pserve --reload``): ask the supervisor to restart us.

    hupper already restarts the worker when an imported module changes;
    reloadmw adds what hupper does not see (``track`` files, templates) by
    sending it the same request, so the two never restart the process twice.
    """

    name = "hupper"
    exits_process = True

    def __call__(self, reason: Sequence[str]) -> None:
        hupper = importlib.import_module("hupper")
        hupper.get_reloader().trigger_reload()


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
                    f"reloadmw (pid={os.getpid()}): not re-executing from server thread "
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
                "reloadmw (pid=%d): requests still running after %gs; re-executing anyway",
                os.getpid(),
                self._timeout,
            )
        try:
            reexec()
        except OSError:
            log.exception(
                "reloadmw (pid=%d): re-executing %s failed; still serving the current code. "
                "Restart the server by hand",
                os.getpid(),
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
            f"reloadmw (pid={os.getpid()}): cannot re-execute: this interpreter has no "
            f"script in sys.argv. Start the server as 'python app.py', or pass restart= "
            f"another strategy"
        )
    return [sys.executable, *flags, *sys.argv]


def reexec() -> None:
    """Replace this process with a fresh run of the same command line."""
    argv = command_line()
    log.info("reloadmw (pid=%d): re-executing %s", os.getpid(), " ".join(argv))
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    # Same pid and same kernel start time after execv: the new process takes
    # its start from here, so the files edited before now are not new to it.
    os.environ[startup.EXEC_START_ENV] = f"{os.getpid()}:{time.time_ns()}"
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


def under_hupper() -> bool:
    """True in a worker process that a hupper monitor (``pserve --reload``) restarts."""
    hupper = sys.modules.get("hupper")
    return hupper is not None and bool(hupper.is_active())


def in_uwsgi(environ: Mapping[str, object]) -> bool:
    return "uwsgi.version" in environ or importlib.util.find_spec("uwsgi") is not None


def choose_server(environ: Mapping[str, object]) -> Strategy | None:
    """The strategy for a non-mod_wsgi server, or None when it is not known."""
    software = str(environ.get("SERVER_SOFTWARE", ""))
    if under_hupper():
        return HupperReload()
    if in_uwsgi(environ):
        return UwsgiReload()
    if software.startswith("gunicorn"):
        return GunicornReload()
    if software.startswith("WSGIServer/"):  # wsgiref writes the response before close()
        return ReExec()
    if software.startswith("waitress"):
        idle = waitress_idle(environ)
        return ReExec(idle) if idle is not None else None
    return None


SERVER_STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "gunicorn": GunicornReload,
    "uwsgi": UwsgiReload,
    "exec": ReExec,
    "hupper": HupperReload,
}
