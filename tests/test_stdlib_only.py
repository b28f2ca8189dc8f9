"""``import reloadmw`` and a plain ReloadMiddleware need nothing but the standard library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Run with -S: no site-packages at all, so WebOb, inotify_simple and the rest are missing.
SCRIPT = f"""
import logging, sys
sys.path.insert(0, {str(REPO)!r})
logging.basicConfig(level=logging.WARNING, format="%(message)s")
from reloadmw import ReloadMiddleware

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]

middleware = ReloadMiddleware(app, interval=0)
body = b"".join(middleware({{"PATH_INFO": "/"}}, lambda status, headers: None))
print(body.decode(), middleware._scanner.monitor.name, sorted(
    name for name in sys.modules if name.split(".")[0] in ("webob", "inotify_simple", "paste")
))
"""


def test_middleware_runs_with_only_the_standard_library() -> None:
    result = subprocess.run(
        [sys.executable, "-S", "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok", "stat", "[]"]
    # "auto" says once why it fell back to stat polling.
    assert result.stderr.count("using the stat backend instead") == 1
    assert "inotify_simple" in result.stderr
