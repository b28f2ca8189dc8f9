"""The changes seen and not yet restarted for: have they settled, and do they compile?"""

from __future__ import annotations

import time
from collections.abc import Mapping

from .logs import log
from .restart.bytecode import forget_bytecode
from .restart.precheck import syntax_error

#: The most one check spends compiling changed ``.py`` files, in seconds. A link
#: planted into a large tree can bring thousands at once: they are compiled over
#: several checks, and the restart waits until all have been.
PRECHECK_BUDGET = 0.5

_monotonic = time.monotonic


class PendingChanges:
    """Changed paths waiting for the restart that loads them.

    :param quiet: seconds without a new change before the changes count as
        settled, so that a burst of saves is one restart.
    :param precheck: hold the restart while a changed ``.py`` file does not compile.
    """

    def __init__(self, quiet: float, precheck: bool) -> None:
        self.quiet = quiet
        self.precheck = precheck
        self._changes: dict[str, float] = {}  # changed path -> wall time of the change
        self._unchecked: set[str] = set()  # changed .py files not compiled since
        #: Each changed ``.py`` file that does not compile -> its error, ``file:line: message``.
        self.broken: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self._changes)

    def paths(self) -> list[str]:
        """The changed paths, sorted."""
        return sorted(self._changes)

    def add(self, changes: Mapping[str, float]) -> None:
        """Note ``changes`` (path -> wall time of the change)."""
        self._changes.update(changes)
        self._unchecked.update(path for path in changes if path.endswith(".py"))

    def unsettled(self, now: float) -> float:
        """Seconds until the changes have been quiet for ``quiet`` (<= 0: settled)."""
        return self.quiet - (now - max(self._changes.values(), default=now))

    def compiles(self) -> bool:
        """True unless ``precheck`` is on and a changed ``.py`` file does not compile.

        Each new error is logged once; a file that compiles again leaves
        :attr:`broken`. Files not reached within :data:`PRECHECK_BUDGET` wait
        for the next check, and until then the answer is False.
        """
        if not self.precheck:
            return True
        unchecked = self._unchecked
        deadline = _monotonic() + PRECHECK_BUDGET
        while unchecked:
            path = unchecked.pop()
            error = syntax_error(path)
            if error is None:
                self.broken.pop(path, None)
            elif self.broken.get(path) != error:
                self.broken[path] = error
                log.warning(
                    "not restarting: %s. Still serving the current code; the restart "
                    "follows once the file compiles",
                    error,
                )
            if unchecked and _monotonic() > deadline:
                return False  # the rest at the next check; each check compiles one at least
        return not self.broken

    def take(self) -> list[str]:
        """Hand the changes over to a restart: forget them, and the stale bytecode of each."""
        reason = list(self._changes)
        forget_bytecode(reason)
        self._changes.clear()
        return reason
