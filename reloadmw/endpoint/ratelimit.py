"""Failed-login counting for the endpoint, bounded in memory."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from typing import Callable


class FailureLimiter:
    """Block a client after ``limit`` failures within ``window`` seconds.

    At most ``capacity`` clients are remembered; when a new one arrives the
    one seen least recently is forgotten, so an attacker rotating addresses
    cannot grow the table (each of its addresses still gets only ``limit``
    tries per window).
    """

    def __init__(
        self,
        limit: int = 5,
        window: float = 60.0,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None if it may try now."""
        with self._lock:
            times = self._recent(client)
            if times is None or len(times) < self.limit:
                return None
            return max(1, math.ceil(times[0] + self.window - self._clock()))

    def fail(self, client: str) -> bool:
        """Count a failure; True if it is the one that blocks ``client``."""
        with self._lock:
            times = self._recent(client)
            if times is None:
                times = self._failures[client] = deque(maxlen=self.limit)
                while len(self._failures) > self.capacity:
                    self._failures.popitem(last=False)
            times.append(self._clock())
            return len(times) == self.limit

    def forget(self, client: str) -> None:
        """Clear ``client``'s failures (after it gave the right password)."""
        with self._lock:
            self._failures.pop(client, None)

    def _recent(self, client: str) -> deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        horizon = self._clock() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        self._failures.move_to_end(client)
        return times
