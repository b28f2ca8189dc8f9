"""In-process test helper: importable modules in a temporary directory, restarts recorded.

A :class:`Sandbox` puts a directory on ``sys.path``, writes modules there,
and builds a ReloadMiddleware whose restart strategy only records the reason.
On exit it removes the modules it imported from ``sys.modules``. The
middleware's baseline is set to "now", so files the test wrote before
creating it are not changes.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import webtest  # type: ignore[import-untyped]

from reloadmw import ReloadMiddleware
from reloadmw.watch.patterns import DEFAULT_IGNORE
from tests.servers import edit_file

#: A WSGI app module whose response names its pid and the VERSION of ``version_module``.
APP_SOURCE = """\
import json, os
import {version_module}

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({{"pid": os.getpid(), "version": {version_module}.VERSION}}).encode()]
"""


class Restarts:
    """A restart strategy that records each reason (the changed paths), thread-safely."""

    def __init__(self) -> None:
        self.reasons: list[list[str]] = []
        self._lock = threading.Lock()

    def __call__(self, reason: Sequence[str]) -> None:
        with self._lock:
            self.reasons.append(sorted(reason))

    def __len__(self) -> int:
        return len(self.reasons)


class Sandbox:
    """A temporary import root for modules the test writes and edits."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.restarts = Restarts()
        self._monkeypatch = monkeypatch
        self._before = set(sys.modules)
        self._made: list[ReloadMiddleware] = []

    def __enter__(self) -> Sandbox:
        self._monkeypatch.syspath_prepend(str(self.root))
        self._monkeypatch.setattr("reloadmw.middleware.process_start_ns", time.time_ns)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for middleware in self._made:
            middleware.close()  # the inotify backend holds a file descriptor
        for name in set(sys.modules) - self._before:
            if str(getattr(sys.modules.get(name), "__file__", "")).startswith(str(self.root)):
                del sys.modules[name]
        importlib.invalidate_caches()

    def write(self, relative: str, text: str) -> Path:
        """Write (or edit) ``relative`` under the root so that its stat signature changes."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        edit_file(path, text)
        importlib.invalidate_caches()
        return path

    def write_app(self, name: str = "webapp", version: str = "1") -> Path:
        """``<name>.py`` serving ``<name>_version.VERSION``; returns the version file."""
        self.write(f"{name}.py", APP_SOURCE.format(version_module=f"{name}_version"))
        return self.write(f"{name}_version.py", f"VERSION = {version!r}\n")

    def serve_app(self, **options: Any) -> tuple[webtest.TestApp, Path]:
        """Import the app of :meth:`write_app` and serve it; return the client and version file."""
        version_file = self.write_app()
        app = importlib.import_module("webapp")
        return self.client(self.middleware(app.application, **options)), version_file

    def middleware(self, app: Any, **options: Any) -> ReloadMiddleware:
        """A middleware checking on every request, with no quiet period, recording restarts."""
        settings: dict[str, Any] = {
            "interval": 0,
            "quiet": 0,
            "restart": self.restarts,
            "root": str(self.root),
            # Not the library under test: teammates edit it while tests run.
            "ignore": (*DEFAULT_IGNORE, "reloadmw/*", "tests/*"),
        }
        settings.update(options)
        middleware = ReloadMiddleware(app, **settings)
        self._made.append(middleware)
        return middleware

    @staticmethod
    def client(middleware: ReloadMiddleware) -> webtest.TestApp:
        return webtest.TestApp(middleware, lint=True)
