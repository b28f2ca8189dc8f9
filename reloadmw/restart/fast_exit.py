"""End a daemon process that mod_wsgi restarts for reloadmw as soon as its atexit handlers ran.

mod_wsgi's shutdown of a daemon process ends in ``Py_Finalize``: once the
non-daemon threads are joined and the atexit handlers have run, CPython
tears every module down and collects what is left. For a Django site that
takes about 0.3 s (measured under Apache: "Terminating Python runtime" to
"Python runtime has shut down"), and Apache's parent process starts the
successor only once it has seen the exit, at its once-a-second pass: so
those 0.3 s often cost a whole second. Only a restart that reloadmw asked
for is shortened; an Apache stop or restart finalizes as usual.

The one part of the teardown that could lose data is done first: files the
app left open get their buffers written, as their finalizers would.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import io
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
        flush_open_files()
        os._exit(0)


#: The file objects whose finalizer writes a buffer (text files hold one over their binary one).
_BUFFERED = (io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom)


def flush_open_files() -> None:
    """Write the buffers of every open file, as their finalizers would have (stdout too)."""
    for obj in gc.get_objects():
        if isinstance(obj, _BUFFERED) and not obj.closed:
            with contextlib.suppress(Exception):
                obj.flush()
