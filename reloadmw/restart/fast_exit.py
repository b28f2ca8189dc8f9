"""End a daemon process that mod_wsgi restarts for reloadmw as soon as its atexit handlers ran.

mod_wsgi's shutdown of a daemon process ends in ``Py_Finalize``: once the
non-daemon threads are joined and the atexit handlers have run, CPython
tears every module down and collects what is left. For a Django site that
takes about 0.3 s (measured under Apache: "Terminating Python runtime" to
"Python runtime has shut down"), and Apache's parent process starts the
successor only once it has seen the exit, at its once-a-second pass: so
those 0.3 s often cost a whole second. Only a restart that reloadmw asked
for is shortened; an Apache stop or restart finalizes as usual.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys

#: How many atexit handlers there were when this module armed its own (None: not armed).
_before: int | None = None


def exit_after_atexit_handlers() -> None:
    """In a mod_wsgi daemon process: from now on, finalizing ends it once the atexit handlers ran.

    Anywhere else (a test calling the hook, say) nothing changes: the exit
    status of a process that exits by itself must stay its own.
    """
    global _before
    count = getattr(atexit, "_ncallbacks", None)
    if _before is None and count is not None and in_daemon_process():
        _before = count()
        atexit.register(_exit_now)


def in_daemon_process() -> bool:
    """True inside a mod_wsgi daemon process (Apache's ``mod_wsgi`` module, with a group)."""
    return bool(getattr(sys.modules.get("mod_wsgi"), "process_group", ""))


def _exit_now() -> None:
    # atexit runs the newest handler first. If that is this one, run the others (the
    # app's, logging's flush) as finalization would, then leave without tearing the
    # modules down. A handler registered since has run already and would run again:
    # then finalize as usual.
    if atexit._ncallbacks() != (_before or 0) + 1:
        return
    atexit.unregister(_exit_now)
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)
