"""What a process watches, and the scan that finds which of it changed."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .frameworks import Framework, unhandled, watched_files
from .logs import log
from .pending import PendingChanges
from .watch.modules import ModuleFiles
from .watch.monitor import Monitor
from .watch.patterns import Tree

if TYPE_CHECKING:
    from .endpoint.router import WatchStatus

#: Changed path -> wall time of the change.
Changes = dict[str, float]


class Scanner:
    """The files this process watches, scanned one scan at a time.

    They are the files of the imported modules (looked up anew at each scan),
    what ``track`` names, what the app's framework registers, and the files in
    the traceback of an app that failed to load. A scan polls the monitor,
    lets the framework take the changes it handles in the process (a template
    edit, say), and adds the others to ``pending``.
    """

    def __init__(self, monitor: Monitor, modules: ModuleFiles, pending: PendingChanges) -> None:
        self.monitor = monitor
        self._modules = modules
        self._pending = pending
        #: One scan at a time. Reentrant: a framework's receivers may watch() inside one.
        self.lock = threading.RLock()
        #: The app's framework, once the app has loaded and is one that reloadmw knows.
        self.framework: Framework | None = None
        #: ``time.time()`` when the last scan ended.
        self.last_check: float | None = None

    def scan(self) -> tuple[Changes, list[str]]:
        """Look once (the caller holds :attr:`lock`): the changes that restart, and the
        module files watched for the first time."""
        new_modules = self._modules.new_files()
        if new_modules:
            self.monitor.add_files(new_modules)
        changes = self.monitor.poll()
        self.last_check = time.time()
        changes = unhandled(self.framework, changes)  # a template edit, say: no restart
        self._pending.add(changes)
        return changes, new_modules

    def watch(self, watched: str | Tree) -> None:
        """Also watch a file, or every matching file under a directory."""
        with self.lock:
            if isinstance(watched, str):
                self.monitor.add_files([watched])
            else:
                self.monitor.add_tree(watched)

    def watch_failed_load(self, files: Sequence[str]) -> None:
        """Watch the files in the traceback of an app that failed to load."""
        wanted = self._modules.wanted(list(files))
        with self.lock:
            self.monitor.add_files(wanted)

    def register(self, framework: Framework | None) -> int:
        """Let the app's ``framework`` register what it watches; how many files it added."""
        self.framework = framework
        before = len(self.monitor)
        if framework is not None:
            framework.start(self.watch)  # Django: sends autoreload_started
        return len(self.monitor) - before

    def log_start(self, tracked: int, registered: int, interval: float) -> None:
        """The start line: how many files are watched, from where, and how."""
        log.info(
            "watching %s with the %s backend, checking at most every %gs",
            watched_files(len(self.monitor), tracked, registered, self.framework),
            self.monitor.name,
            interval,
        )

    def close(self) -> None:
        """Release the monitor's OS resources; nothing changes any more."""
        with self.lock:
            self.monitor.close()

    def status(self) -> WatchStatus:
        """What the endpoint's status answer says about watching."""
        return {
            "watched_files": len(self.monitor),
            "last_check": self.last_check,
            "pending_changes": self._pending.paths(),
        }
