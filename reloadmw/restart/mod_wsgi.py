"""mod_wsgi on Unix: daemon mode restarts its own process; embedded mode cannot."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence

from .fast_exit import exit_after_atexit_handlers
from .strategy import WarnOnly


class SignalSelf:
    """mod_wsgi daemon mode: SIGINT to our own pid.

    mod_wsgi treats it as a graceful shutdown: requests in flight get up to
    ``shutdown-timeout`` seconds to finish, then a fresh process is started.
    The process ends once its atexit handlers ran (:mod:`.fast_exit`).
    """

    name = "mod_wsgi-daemon"
    exits_process = True

    def __call__(self, reason: Sequence[str]) -> None:
        exit_after_atexit_handlers()
        os.kill(os.getpid(), signal.SIGINT)


def embedded_mode() -> WarnOnly:
    return WarnOnly(
        "mod_wsgi-embedded",
        "mod_wsgi embedded mode cannot restart Apache's child processes. Use daemon mode "
        "(WSGIDaemonProcess + WSGIProcessGroup) or restart Apache by hand",
    )
