"""Which code a page was rendered with, comparable across the processes of one app.

A pid or a process start time cannot say whether a page is current: the
page may have been rendered by one process and be polled by another, which
started later for no reason to do with the code, or loaded a few modules
more. The token is made of file versions instead, which every process sees
alike: a file's version is the later of its mtime and ctime.

A process has loaded every file as it was when the process started
(``start_ns``), and the newest version among the files it watches
(``newest_ns``: their versions then, and each change it has seen since)
says how new that code is. So:

- a page carries ``max(start, newest)``: no file saved before then can be
  newer than the page; while the process has changes waiting for a restart,
  only ``start``, since its code does not include them;
- a poll is answered with ``newest``, and the page is out of date when that
  is later than its token and the answering process has nothing waiting;
- a process whose app failed to load answers at least ``start``: a page
  rendered before it started came from code that loaded, and is out of date
  (a deleted module changes no file's version, yet breaks the import).

A process that started later but loaded nothing newer answers a version no
later than the page's token. A process that loaded a module the page's
process never imported can answer a later one: the script then reloads
once, and remembers for what (see ``client.js``), so that it never loops.

Times are whole microseconds, exact in a JavaScript number.
"""

from __future__ import annotations

import time
from typing import Callable, NamedTuple, Protocol


class NewestVersion(Protocol):
    """The change monitor: the newest file version it knows."""

    @property
    def newest_ns(self) -> int: ...


class Pending(Protocol):
    """The changes seen and not yet restarted for."""

    broken: dict[str, str]

    def __bool__(self) -> bool: ...

    def unsettled(self, now: float) -> float: ...


class RestartState(Protocol):
    """The process's restart: asked for, or on its way."""

    @property
    def claimed(self) -> bool: ...

    requested: bool
    scheduled: bool


class Watching(NamedTuple):
    """What the middleware knows about its process's code, read by live reload."""

    #: When this process started (ns): it loaded every file as it was then.
    start_ns: int
    monitor: NewestVersion
    pending: Pending
    restarter: RestartState
    #: Look for changes now (a page about to be rendered shows what this process has).
    check: Callable[[], object]
    #: Make the next request check, whatever the interval: the next poll is the one
    #: that restarts (under mod_wsgi, timed to Apache's beat).
    check_next: Callable[[], object]

    def restarting(self) -> bool:
        """A restart of this process is on its way: its code is about to be replaced."""
        restarter = self.restarter
        return restarter.claimed or restarter.requested or restarter.scheduled

    def waiting(self) -> bool:
        """Changes are waiting for a restart (settling, broken, or on their way)."""
        return bool(self.pending) or self.restarting()

    def settling(self) -> float | None:
        """Seconds until the waiting changes have been quiet long enough, if they have not."""
        left = self.pending.unsettled(time.time()) if self.pending else 0.0
        return left if left > 0 else None

    def page_token(self) -> int:
        """The token a page rendered now carries (µs)."""
        if self.waiting():
            return self.start_ns // 1000
        return max(self.start_ns, self.monitor.newest_ns) // 1000

    def served(self, failed: bool = False) -> int:
        """The version a poll is answered with (µs); ``failed``: the app failed to load."""
        newest = self.monitor.newest_ns
        return (max(self.start_ns, newest) if failed else newest) // 1000
