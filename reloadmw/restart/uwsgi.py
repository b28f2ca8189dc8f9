"""uWSGI: ``uwsgi.reload()``, uWSGI's own graceful reload."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping, Sequence

from ..logs import prefix


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
                f"{prefix()}uwsgi.reload() failed; see the uWSGI log. "
                f"Run uWSGI with --master so that it can reload"
            )


def in_uwsgi(environ: Mapping[str, object]) -> bool:
    return "uwsgi.version" in environ or importlib.util.find_spec("uwsgi") is not None
