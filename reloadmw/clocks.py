"""The boot clock: the one clock every process shares and nobody sets or steps.

The wall clock dates files, but it can jump: NTP or a virtual machine's host
may step it at any moment, by seconds. Times that several processes compare,
or that are taken at one moment and used at another, are kept on this clock.
"""

from __future__ import annotations

import time


def boot_ns() -> int:
    """Nanoseconds since boot (``CLOCK_BOOTTIME``; the monotonic clock where there is none)."""
    return time.clock_gettime_ns(_BOOT_CLOCK) if _BOOT_CLOCK is not None else time.monotonic_ns()


def wall_minus_boot_ns() -> int:
    """The wall clock's time at boot: what turns a boot-clock time into a wall-clock one.

    The wall clock is read between two readings of the boot clock, and
    compared with their middle, so a thread paused between the readings
    errs by half the pause at most.
    """
    before = boot_ns()
    wall = time.time_ns()
    return wall - (before + boot_ns()) // 2


def _read_boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip() or "-"
    except OSError:
        return "-"  # not Linux: a time of another boot is caught only when it is ahead


_BOOT_CLOCK = getattr(time, "CLOCK_BOOTTIME", None)
#: Tells this boot from another, so that times of :func:`boot_ns` are compared in one boot.
BOOT_ID = _read_boot_id()
