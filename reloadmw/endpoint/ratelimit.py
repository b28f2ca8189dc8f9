"""Failed-password counting for the endpoint: reserved before the check, bounded, shared.

:class:`FailureLimiter` allows each client address ``limit`` failed passwords
per ``window`` seconds. An attempt is *reserved* before its password is
checked, so concurrent guesses cannot all pass the limit while their checks
run: the attempt counts as a failure at once, and a right password gives it
back (with the address's earlier failures).

The counts live in a table of ``capacity`` slots, in a file of the state
directory locked with ``flock``, so that every process of an app shares them
(mod_wsgi's daemon processes, gunicorn's workers); in memory where that
cannot be done (Windows). An address's slot is one of a few neighbours picked
by a keyed hash. When they are all taken, an address that is not locked out
is forgotten first; when every one is locked out, the newcomer is refused too
rather than a lockout forgotten. Times are read on the boot clock, which no
one can set.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import secrets
import stat
import struct
import threading
from collections.abc import Iterator
from typing import Callable, NamedTuple, Protocol

from ..clocks import BOOT_ID, boot_ns
from .statedir import NOFOLLOW, StateDir, squatted

try:
    import fcntl
except ImportError:  # Windows: the table stays in memory (statedir.SHARED is False)
    fcntl = None  # type: ignore[assignment]

_HEADER = struct.Struct("<8sII40s16s")  # magic, limit, capacity, boot id, hash key
_HEADER_SIZE = 128
_MAGIC = b"rmwfail1"
_NEIGHBOURS = 8


class Reservation(NamedTuple):
    """An attempt: refused (``retry_after`` seconds to wait) or counted; is it the last?"""

    retry_after: int | None
    last: bool  # if this attempt fails, the address is locked out: log it, once


class _Slot(NamedTuple):
    number: int
    digest: int
    times: list[float]  # the recent failures, oldest first


class _Table(Protocol):
    def read(self, offset: int, size: int) -> bytes: ...
    def write(self, offset: int, data: bytes) -> None: ...
    def clear(self) -> None: ...


class FailureLimiter:
    """Refuse a client after ``limit`` failures within ``window`` seconds.

    :param capacity: how many addresses the table holds.
    :param clock: seconds, for tests; the boot clock by default.
    :param shared: the state directory and file name that the processes share;
        ``None``: this process's memory.
    """

    def __init__(
        self,
        limit: int = 5,
        window: float = 60.0,
        capacity: int = 16_384,
        *,
        clock: Callable[[], float] | None = None,
        shared: tuple[StateDir, str] | None = None,
    ) -> None:
        self.limit = limit
        self.window = window
        self.capacity = capacity
        self._clock = clock or (lambda: boot_ns() / 1e9)
        self._record = struct.Struct(f"<QI4x{limit}d")
        size = _HEADER_SIZE + capacity * self._record.size
        self._storage = _FileStorage(*shared, size) if shared else _MemoryStorage(size)

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None if it may try now (nothing counted)."""
        with self._storage.session() as table:
            now = self._clock()  # under the lock: the times in the table are older
            mine = self._mine(table, client, now)
        if mine is not None and len(mine.times) >= self.limit:
            return self._wait(mine.times[0], now)
        return None

    def reserve(self, client: str) -> Reservation:
        """Count an attempt by ``client`` now, before its password is checked, if it may try."""
        with self._storage.session() as table:
            now = self._clock()
            digest = self._digest(table, client)
            slots = self._neighbours(table, digest, now)
            mine = next((slot for slot in slots if slot.digest == digest), None)
            slot = mine or self._free(slots)
            if slot is None:  # every neighbour is locked out: keep them all
                return Reservation(self._wait(min(s.times[0] for s in slots), now), False)
            times = slot.times if mine else []
            if len(times) >= self.limit:
                return Reservation(self._wait(times[0], now), False)
            self._store(table, slot.number, digest, [*times, now])
        return Reservation(None, len(times) + 1 == self.limit)

    def forget(self, client: str) -> None:
        """Clear ``client``'s failures and reservations (it gave the right password)."""
        with self._storage.session() as table:
            mine = self._mine(table, client, self._clock())
            if mine is not None:
                self._store(table, mine.number, 0, [])

    def __len__(self) -> int:
        """How many addresses have recent failures."""
        with self._storage.session() as table:
            now = self._clock()
            return sum(bool(self._slot(table, n, now).times) for n in range(self.capacity))

    # -- the table ----------------------------------------------------------

    def _digest(self, table: _Table, client: str) -> int:
        """The keyed hash of ``client``; (re)starts a table of another boot or shape."""
        magic, limit, capacity, boot, key = _HEADER.unpack(table.read(0, _HEADER.size))
        wanted = (_MAGIC, self.limit, self.capacity, BOOT_ID.encode().ljust(40, b"\0")[:40])
        if (magic, limit, capacity, boot) != wanted:
            key = secrets.token_bytes(16)
            table.clear()
            table.write(0, _HEADER.pack(*wanted, key))
        data = hashlib.blake2b(client.encode("utf-8", "surrogateescape"), key=key, digest_size=8)
        return int.from_bytes(data.digest(), "little") or 1  # 0 marks a free slot

    def _mine(self, table: _Table, client: str, now: float) -> _Slot | None:
        digest = self._digest(table, client)
        slots = self._neighbours(table, digest, now)
        return next((slot for slot in slots if slot.digest == digest and slot.times), None)

    def _neighbours(self, table: _Table, digest: int, now: float) -> list[_Slot]:
        first = digest % self.capacity
        count = min(_NEIGHBOURS, self.capacity)
        return [self._slot(table, (first + n) % self.capacity, now) for n in range(count)]

    def _slot(self, table: _Table, index: int, now: float) -> _Slot:
        digest, count, *times = self._record.unpack(
            table.read(_HEADER_SIZE + index * self._record.size, self._record.size)
        )
        # A time ahead of the clock is of another clock: forgotten, like an old one.
        recent = [t for t in times[:count] if now - self.window < t <= now]
        return _Slot(index, digest if recent else 0, recent)

    def _free(self, slots: list[_Slot]) -> _Slot | None:
        """A free slot, else the one not locked out whose last failure is oldest."""
        unlocked = [slot for slot in slots if len(slot.times) < self.limit]
        return min(unlocked, key=lambda s: s.times[-1] if s.times else -math.inf, default=None)

    def _store(self, table: _Table, index: int, digest: int, times: list[float]) -> None:
        padded = times + [0.0] * (self.limit - len(times))
        offset = _HEADER_SIZE + index * self._record.size
        table.write(offset, self._record.pack(digest, len(times), *padded))

    def _wait(self, oldest: float, now: float) -> int:
        return max(1, math.ceil(oldest + self.window - now))


class _MemoryStorage:
    """The table in this process's memory, behind a lock."""

    def __init__(self, size: int) -> None:
        self._data = bytearray(size)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def session(self) -> Iterator[_MemoryStorage]:
        with self._lock:
            yield self

    def read(self, offset: int, size: int) -> bytes:
        return bytes(self._data[offset : offset + size])

    def write(self, offset: int, data: bytes) -> None:
        self._data[offset : offset + len(data)] = data

    def clear(self) -> None:
        self._data[:] = bytes(len(self._data))


class _FileStorage:
    """The table in a file of the state directory, under ``flock`` for each session."""

    def __init__(self, state: StateDir, name: str, size: int) -> None:
        self._state = state
        self._name = name
        self._size = size

    @contextlib.contextmanager
    def session(self) -> Iterator[_FileSession]:
        """Raises StateDirError (the directory or file is not safe) or OSError."""
        with self._state.opened() as directory:
            fd = os.open(self._name, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o600, dir_fd=directory)
        try:
            st = os.fstat(fd)
            if st.st_uid != os.geteuid() or not stat.S_ISREG(st.st_mode):
                path = os.path.join(self._state.path, self._name)
                raise squatted(path, st, "the failure count")
            fcntl.flock(fd, fcntl.LOCK_EX)  # each session opens anew, so threads exclude too
            if os.fstat(fd).st_size != self._size:
                os.ftruncate(fd, self._size)
            yield _FileSession(fd, self._size)
        finally:
            os.close(fd)


class _FileSession:
    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._size = size

    def read(self, offset: int, size: int) -> bytes:
        return os.pread(self._fd, size, offset).ljust(size, b"\0")

    def write(self, offset: int, data: bytes) -> None:
        os.pwrite(self._fd, data, offset)

    def clear(self) -> None:
        os.ftruncate(self._fd, 0)
        os.ftruncate(self._fd, self._size)
