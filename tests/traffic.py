"""Requests sent back to back while a server restarts, for the ecosystem tests.

:class:`Traffic` keeps a few clients busy until it is stopped and records
every answer and every failure, so a test can say "no request failed while
the workers were replaced".
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Callable

from tests.servers import ProbeApp, ServerProcess, http_get, wait_until

#: Seconds a negative check (no further restart) watches a server.
SETTLE = 1.5


class Traffic:
    """``clients`` threads GETting ``path`` back to back until the block ends."""

    def __init__(self, port: int, clients: int = 3, path: str = "/") -> None:
        self.port = port
        self.path = path
        self.answers: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._client, name=f"traffic-{n}", daemon=True)
            for n in range(clients)
        ]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _client(self) -> None:
        while not self._stop.is_set():
            try:
                response = http_get(self.port, self.path)
                outcome: dict[str, Any] | str = (
                    response.json()
                    if response.status == 200
                    else f"status {response.status}: {response.body[:200]!r}"
                )
            except (OSError, http.client.HTTPException, ValueError) as error:
                outcome = f"{type(error).__name__}: {error}"
            with self._lock:
                if isinstance(outcome, str):
                    self.failures.append(outcome)
                else:
                    self.answers.append(outcome)

    def count(self) -> int:
        with self._lock:
            return len(self.answers) + len(self.failures)


def write_probe_module(app: ProbeApp) -> str:
    """Copy the probe's WSGI script as an importable module; return its import string.

    The app's files are dated a minute back: a server that imports them at
    once would otherwise see files saved in the same clock tick as its own
    start, which count as edits made during start-up.
    """
    (app.directory / "probe_wsgi.py").write_text(app.script.read_text())
    backdate(app.directory)
    return "probe_wsgi:application"


def backdate(directory: Path, seconds: float = 60.0) -> None:
    """Set the mtime of every file under ``directory`` ``seconds`` into the past."""
    then = time.time_ns() - int(seconds * 1e9)
    for path in directory.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(then, then))


def served(server: ServerProcess, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Poll (through restarts) until the server's JSON answer is ``wanted``; return it."""

    def answered() -> dict[str, Any] | None:
        with contextlib.suppress(OSError, http.client.HTTPException):
            answer: dict[str, Any] = http_get(server.port, timeout=5).json()
            if wanted(answer):
                return answer
        return None

    return wait_until(answered, 30, server.describe)


def settled_imports(app: ProbeApp, server: ServerProcess) -> list[tuple[int, str]]:
    """Keep requesting for :data:`SETTLE` seconds; return the imports, which must not change.

    A process that kept seeing an old edit as new would restart again here.
    """
    before = app.imports()
    with Traffic(server.port, clients=2) as traffic:
        settle()
    assert traffic.failures == [], traffic.failures
    assert app.imports() == before, f"restarted again: {app.imports()}\n{server.logs()}"
    return before


def settle() -> None:
    """Give a server that must not restart again :data:`SETTLE` seconds of requests.

    A negative check has no event to poll for, so it watches for a fixed time.
    """
    time.sleep(SETTLE)


def copy_tree_readable(source: Path, target: Path) -> Path:
    """Copy an example directory (no caches) to ``target``, world-readable."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target
