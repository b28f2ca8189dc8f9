"""Shared pieces of the in-process tests: files with chosen mtimes, a fake clock, spies.

Every file the tests create is written "old" (an hour ago) unless a test says
otherwise, so that only the edits a test makes look like changes: a file saved
after the process started is a change by design.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from reloadmw import middleware
from reloadmw.watch.monitor import make_monitor
from reloadmw.watch.patterns import DEFAULT_IGNORE

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from reloadmw.watch.monitor import Monitor
    from reloadmw.watch.patterns import Tree

REPO = Path(__file__).resolve().parent.parent
#: Seconds before "now" at which test files are written: before any process start.
AGE = 3600.0
#: The project's own code is edited by others while the tests run; never watch it here.
IGNORE = (*DEFAULT_IGNORE, f"{REPO}/*")


def write(path: Path, text: str = "", *, age: float | None = AGE) -> Path:
    """Write ``text`` to ``path`` (making parents); mtime ``age`` seconds ago, or now if None."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if age is not None:
        set_mtime(path, time.time_ns() - int(age * 1e9))
    return path


def set_mtime(path: Path, ns: int) -> None:
    os.utime(path, ns=(ns, ns))


def mtime_ns(path: Path) -> int:
    return os.stat(path).st_mtime_ns


def edit(path: Path, text: str) -> Path:
    """Save new content in place, with a current mtime, as an editor would."""
    return write(path, text, age=None)


class FakeClock:
    """Replaces the middleware's monotonic clock so that intervals pass on demand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SpyMonitor:
    """Wraps a real monitor: counts polls, and can hold a poll until released."""

    def __init__(self, inner: Monitor) -> None:
        self._inner = inner
        self.name = inner.name
        self.polls = 0
        self.hold = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def add_files(self, paths: Sequence[str]) -> None:
        self._inner.add_files(paths)

    def add_tree(self, tree: Tree) -> None:
        self._inner.add_tree(tree)

    def poll(self) -> dict[str, float]:
        self.polls += 1
        if self.hold:
            self.entered.set()
            assert self.release.wait(10), "the held poll was never released"
        return self._inner.poll()

    def __len__(self) -> int:
        return len(self._inner)

    def close(self) -> None:
        self._inner.close()


class Restarts:
    """A ``restart=`` callable that records each reason it is given."""

    def __init__(self, fail: bool = False) -> None:
        self.reasons: list[list[str]] = []
        self.times: list[float] = []  # wall time of each call
        self.fail = fail
        self.__qualname__ = "Restarts"

    def __call__(self, reason: Sequence[str]) -> None:
        self.reasons.append(list(reason))
        self.times.append(time.time())
        if self.fail:
            raise RuntimeError("restart callback failed on purpose")

    @property
    def count(self) -> int:
        return len(self.reasons)


def hello_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


@contextlib.contextmanager
def spying_on_monitors(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[SpyMonitor]]:
    """Every middleware built in the block gets a :class:`SpyMonitor`, closed at the end.

    Closing matters: each inotify monitor holds one of the user's few inotify
    instances (``fs.inotify.max_user_instances``, shared by every process).
    """
    spies: list[SpyMonitor] = []

    def make(backend: str, start_ns: int, ignored: Any) -> SpyMonitor:
        spies.append(SpyMonitor(make_monitor(backend, start_ns, ignored)))
        return spies[-1]

    monkeypatch.setattr(middleware, "make_monitor", make)
    try:
        yield spies
    finally:
        for spy in spies:
            spy.close()


def start_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the start-up baseline from now, so files left by earlier tests do not count."""
    start = time.time_ns()
    monkeypatch.setattr(middleware, "process_start_ns", lambda: start)


@contextlib.contextmanager
def new_modules_forgotten() -> Iterator[None]:
    """Drop the modules imported inside the block from ``sys.modules`` when it ends."""
    before = set(sys.modules)
    try:
        yield
    finally:
        for name in set(sys.modules) - before:
            del sys.modules[name]
