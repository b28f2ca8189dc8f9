"""Code loaded while its files were changing: such a process never serves through the hook.

A process that imports its code while a burst of saves (``git checkout``, a
formatter) is being written can hold some modules old and some new. It is
*tainted* when:

- the process's first scan, made right after its load, finds a change: a
  watched file was saved after the process started (the monitor's baseline),
  so the load may have read part of a burst; or
- a module imported after the load (by a request) had already changed when it
  was first watched: it may have come in new among old ones.

No clock is compared: a file's timestamp comes from the kernel's coarse clock,
which can lag ``time.time()`` by a tick, so a save just after the load could
look older than it.

mod_wsgi's ``reload_required`` hook then holds the request until the files
have been quiet for ``quiet`` seconds, at most :data:`MAX_HOLD`, and answers
True: mod_wsgi restarts the process and replays the request in a fresh one.
An untainted process loaded its code before the burst began, so it serves
that consistent old code meanwhile. Without the hook a tainted process
restarts once the files are quiet, after the response in hand, like any other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import Callable

from .logs import describe, log
from .pending import PendingChanges
from .restart.restarter import Restarter

#: The longest the hook holds one request of a tainted process, in seconds. Files
#: still changing then (a tool writing without pause) do not hold it longer: the
#: process restarts anyway, and its successor may have to wait in turn.
MAX_HOLD = 5.0
#: Seconds between two looks while a changed file does not compile, and the longest
#: a look waits for a scan running in another thread.
STEP = 0.05

_monotonic = time.monotonic


class LoadTaint:
    """Decides whether this process's code may be mixed, and holds the hook while it is.

    :param pending: the changes not yet restarted for.
    :param restarter: owner of "a restart is under way".
    :param lock: the middleware's scan lock, taken only for each look.
    :param scan: looks for changes (they reach ``pending`` and :meth:`note`).
    """

    def __init__(
        self,
        pending: PendingChanges,
        restarter: Restarter,
        lock: threading.RLock,
        scan: Callable[[], object],
    ) -> None:
        self._pending = pending
        self._restarter = restarter
        self._lock = lock
        self._scan = scan
        #: True once a change shows the code may be mixed; it stays so in this process.
        self.tainted = False
        self._first = True  # the next scan is the process's first, right after its load

    def note(self, changes: Mapping[str, float], first_seen: Iterable[str]) -> None:
        """Take one scan's changes (path -> time) and the module files it watched first."""
        first, self._first = self._first, False
        if self.tainted or not changes:
            return
        suspects = list(changes) if first else [p for p in first_seen if p in changes]
        if suspects:
            self.tainted = True
            log.info(
                "%s changed while this process was loading its code, which may mix old and new "
                "versions; it serves no request through mod_wsgi's reload_required hook, and "
                "restarts once no watched file has changed for %gs",
                describe(suspects),
                self._pending.quiet,
            )

    def restart_when_quiet(self) -> bool:
        """The hook in a tainted process: hold the request until the files are quiet; True.

        Waits until no watched file has changed for ``quiet`` seconds and the
        changed files compile, at most :data:`MAX_HOLD`, then asks mod_wsgi
        for the restart (unless another request already claimed one). Never
        raises: a failed look is logged, and the restart goes ahead.
        """
        start = _monotonic()
        deadline = start + MAX_HOLD
        late = False
        while not self._restarter.claimed:
            try:
                wait = self._look()
            except Exception:
                log.exception("checking for changes failed while holding a request; restarting")
                break
            now = _monotonic()
            late = wait > 0 and now >= deadline
            if wait <= 0 or late:
                break
            time.sleep(min(wait, deadline - now))
        if not self._restarter.claim():
            return True  # a restart is already on its way: replay this request after it
        held = _monotonic() - start
        with self._lock:
            reason = self._pending.take()
        self._restarter.request_from_hook()
        log.info(
            "change detected in %s; held this request %.3fs %s; mod_wsgi restarts this daemon "
            "process before the request",
            describe(reason) or "nothing",
            held,
            "(the most it waits) while files were still changing or did not compile"
            if late
            else "until the files were quiet",
        )
        return True

    def _look(self) -> float:
        """Scan; seconds to wait before the next look (<= 0: restart now)."""
        if not self._lock.acquire(timeout=STEP):
            return STEP  # another thread is scanning: look again soon
        try:
            self._scan()
            pending = self._pending
            if not pending:
                return 0.0
            wait = pending.unsettled(time.time())
            if wait > 0:
                return wait
            return 0.0 if pending.compiles() else STEP
        finally:
            self._lock.release()
