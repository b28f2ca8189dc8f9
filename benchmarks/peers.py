"""One full check of each peer reloader, driven by hand (no threads, no sleeps).

Each function builds the peer as it runs in its own loop, takes its baseline
pass, and returns a callable that does exactly one more pass.
"""

from __future__ import annotations

import types
from typing import Any, Callable

Check = Callable[[], object]


def hupper_monitor() -> tuple[Check, Check]:
    """hupper's PollingFileMonitor pass, and its worker's ``sys.modules`` walk.

    In hupper the worker process walks ``sys.modules`` every second and sends
    new paths to the monitor process, which stats them all every second.
    """
    from hupper.polling import PollingFileMonitor  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from hupper.worker import WatchSysModules  # type: ignore[import-untyped,import-not-found,unused-ignore]

    monitor: Any = PollingFileMonitor(callback=lambda path: None)
    walker: Any = WatchSysModules(callback=lambda paths: [monitor.add_path(p) for p in paths])
    walker.update_paths()

    def monitor_pass() -> None:
        with monitor.lock:  # as PollingFileMonitor.run
            paths = list(monitor.paths)
        monitor.check_reload(paths)

    monitor_pass()
    return monitor_pass, walker.update_paths


def django_tick() -> Check:
    """django's StatReloader: one step of its ``tick()`` generator (its 1 s sleep removed)."""
    from django.utils import autoreload  # type: ignore[import-untyped,import-not-found,unused-ignore]

    autoreload.time = types.SimpleNamespace(sleep=lambda seconds: None)
    reloader = autoreload.StatReloader()
    reloader.notify_file_changed = lambda path: None  # others edit files meanwhile: never exit
    ticks = reloader.tick()
    next(ticks)  # the baseline pass
    return lambda: next(ticks)


def werkzeug_step() -> Check:
    """werkzeug's StatReloaderLoop.run_step, after the baseline pass of ``__enter__``."""
    from werkzeug._reloader import StatReloaderLoop  # type: ignore[import-untyped,import-not-found,unused-ignore]

    loop = StatReloaderLoop()
    loop.trigger_reload = lambda filename: None  # type: ignore[method-assign]  # never exit
    loop.__enter__()
    return loop.run_step
