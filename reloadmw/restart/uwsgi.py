"""uWSGI: a worker retires itself (``lazy-apps``), else ``uwsgi.reload()`` where it is safe.

Every reload that uWSGI's master drives (``uwsgi.reload()``, SIGHUP, the
master fifo's ``r``, ``c`` and ``w``, touch-reload, chain reload) sends SIGHUP
to the workers. uWSGI 2.0's worker handler (``gracefully_kill``) exits at once
in a single-threaded worker that is not in a request, and a worker counts as
in a request only once ``accept()`` has returned and the request is being
read: a connection accepted in between is closed unread, and the client gets
a reset. A worker with two threads or more only stops its loops, and loses
nothing.

With ``lazy-apps`` (each worker imports the app itself) the worker that saw
the change sends SIGHUP to its own thread, from inside its request: uWSGI
then stops that worker's loop, the worker exits once the response is
complete, and the master forks a fresh one that imports the new code. The
other workers see the change at their next check and do the same, so the
master never signals a worker. Without ``lazy-apps`` the app lives in the
master, and only the master's reload loads new code: reloadmw asks for it
only where no worker can be caught between ``accept()`` and its request
(threaded workers, or a single worker, the one asking). Otherwise it does not
reload, and says at each change what to add.
"""

from __future__ import annotations

import importlib
import importlib.util
import signal
import threading
from collections.abc import Mapping, Sequence

from ..logs import prefix
from .strategy import Strategy, WarnOnly

#: Why reloadmw does not reload uWSGI without ``lazy-apps`` and with single-threaded workers.
UNSAFE_MASTER_RELOAD = (
    "uWSGI without lazy-apps reloads through its master, whose SIGHUP makes a single-threaded "
    "worker drop a connection it has just accepted, so reloadmw does not reload it. Add "
    "--lazy-apps (lazy-apps = true): each worker then retires itself after its response. Or "
    "run workers with --threads 2 or more"
)


def uwsgi_reload() -> Strategy:
    """:class:`UwsgiReload`, or a warning at each change where the master's reload could drop one.

    Outside uWSGI (no ``uwsgi`` module) it is :class:`UwsgiReload`, whose call says so.
    """
    try:
        uwsgi = importlib.import_module("uwsgi")
    except ImportError:
        return UwsgiReload()
    options: Mapping[str, object] = getattr(uwsgi, "opt", {})
    if master_reload_loses_nothing(options, getattr(uwsgi, "numproc", None)):
        return UwsgiReload()
    return WarnOnly("uwsgi", UNSAFE_MASTER_RELOAD)


def master_reload_loses_nothing(options: Mapping[str, object], workers: object) -> bool:
    """True unless the master's reload would SIGHUP idle single-threaded workers.

    With ``lazy-apps`` no master reload is asked for; a single worker is the
    one asking, in its request.
    """
    single = isinstance(workers, int) and workers < 2
    return lazy_apps(options) or threads(options) >= 2 or single


class UwsgiReload:
    """uWSGI: retire this worker (``lazy-apps``), else ``uwsgi.reload()``.

    :func:`uwsgi_reload` gives it only where the master's reload loses nothing.
    """

    name = "uwsgi"
    exits_process = True

    def __call__(self, reason: Sequence[str]) -> None:
        uwsgi = importlib.import_module("uwsgi")  # exists only inside uWSGI
        options: Mapping[str, object] = getattr(uwsgi, "opt", {})
        if lazy_apps(options):
            signal.pthread_kill(threading.get_ident(), signal.SIGHUP)
            return
        if not uwsgi.reload():
            raise RuntimeError(
                f"{prefix()}uwsgi.reload() failed; see the uWSGI log. "
                f"Run uWSGI with --master so that it can reload"
            )


def lazy_apps(options: Mapping[str, object]) -> bool:
    """True when each worker imports the app (``lazy-apps`` or ``lazy``), as uWSGI reads it."""
    for key in ("lazy-apps", "lazy"):
        value = _last(options, key)
        if value is not None and value.lower() not in ("false", "off", "no", "0"):
            return True
    return False


def threads(options: Mapping[str, object]) -> int:
    """The ``threads`` option: threads per worker (1 when absent or not a number)."""
    value = _last(options, "threads")
    return int(value) if value is not None and value.isdecimal() else 1


def _last(options: Mapping[str, object], key: str) -> str | None:
    """An option's value as text: the last one when it was given several times."""
    value = options.get(key)
    if isinstance(value, list):
        value = value[-1] if value else None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if value is True:
        return "true"
    return value if isinstance(value, str) else None


def in_uwsgi(environ: Mapping[str, object]) -> bool:
    return "uwsgi.version" in environ or importlib.util.find_spec("uwsgi") is not None
