"""When this process started, as a wall-clock time in nanoseconds.

A file whose mtime is later than this was saved while the app was starting
(or after), so the first scan must treat it as changed.

The kernel keeps the start on the boot clock. It is put on the wall clock
(which dates files) with the difference between the two clocks as read at
import, and again in each forked child, not when the middleware asks: a step
of the wall clock in between (NTP, a virtual machine's host setting the time)
would otherwise move the start by as much, past the edits made meanwhile.
"""

from __future__ import annotations

import os

from ..clocks import boot_ns, wall_minus_boot_ns

#: Set by the ``exec`` restart strategy as ``"<pid>:<ns>"``. ``execv`` keeps the
#: pid and the kernel's start time, so without it every file edited since the
#: first start would look new and the process would restart forever.
EXEC_START_ENV = "RELOADMW_EXEC_START"


def process_start_ns() -> int:
    """Return the wall-clock time (ns) at which this process (re)started."""
    inherited = _start_from_env()
    if inherited is not None:
        return inherited
    if os.environ.get("UWSGI_RELOADS", "0") != "0":
        # uWSGI's master re-executes itself on reload (same pid, same kernel
        # start time) and counts the reloads here: start from the import.
        return _IMPORT_NS
    try:
        return _start_from_proc() + _wall_minus_boot_ns
    except (OSError, ValueError, IndexError, AttributeError):
        return _IMPORT_NS


def imported_before_start() -> bool:
    """True when reloadmw was imported by a parent before it forked this process.

    That is gunicorn's ``--preload``: the workers inherit the app's modules.
    Both times are on the boot clock, so no step of the wall clock can sway it.
    """
    try:
        return _start_from_proc(latest=False) > _IMPORT_BOOT_NS
    except (OSError, ValueError, IndexError, AttributeError):
        return False


def _start_from_env() -> int | None:
    pid, _, ns = os.environ.get(EXEC_START_ENV, "").partition(":")
    if pid == str(os.getpid()) and ns.isdigit():
        return int(ns)
    return None


def _start_from_proc(latest: bool = True) -> int:
    """The start time from the kernel, on the boot clock: the latest it can be, or the earliest.

    The kernel keeps it in whole clock ticks, rounded down. A file written just
    before the fork must not look like an edit during start-up, so the baseline
    takes the end of that tick; "imported before this process started" must
    hold for certain, so it compares with the tick's start.
    """
    # Field 22 of /proc/self/stat is the start time in clock ticks since boot.
    # The command name (field 2) may hold spaces, so split after its ')'.
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    ticks = int(fields[19]) + (1 if latest else 0)
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _read_clocks_after_fork() -> None:
    global _wall_minus_boot_ns
    _wall_minus_boot_ns = wall_minus_boot_ns()


_IMPORT_BOOT_NS = boot_ns()
#: Wall clock minus boot clock, read at import and again in each forked child.
_wall_minus_boot_ns = wall_minus_boot_ns()
#: The import on the wall clock, on the same footing as the start from the kernel.
_IMPORT_NS = _IMPORT_BOOT_NS + _wall_minus_boot_ns
if hasattr(os, "register_at_fork"):  # not on Windows, where nothing forks
    os.register_at_fork(after_in_child=_read_clocks_after_fork)
