"""WSGI app the real-server tests run: it answers with its pid and code version.

The rig copies this file as ``probe.py`` next to a generated ``app.wsgi``.
``version.py`` beside it is the module the tests edit; ``config.ini`` and
``templates/`` are read once at import, as an app reads its settings. Each
process appends ``"<pid> <version>"`` to ``state/imports.log`` when it imports
this module, so the tests count restarts from evidence.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import version

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

HERE = Path(__file__).parent
STATE = HERE / "state"
CONFIG_FILE = HERE / "config.ini"
TEMPLATES_DIR = HERE / "templates"

CONFIG = CONFIG_FILE.read_text() if CONFIG_FILE.exists() else None
TEMPLATES = sorted(os.listdir(TEMPLATES_DIR)) if TEMPLATES_DIR.is_dir() else []

with (STATE / "imports.log").open("a") as imports_log:
    imports_log.write(f"{os.getpid()} {version.VERSION}\n")


def mark(name: str) -> None:
    """Leave ``state/<name>-<pid>`` so a test can see where the app is."""
    (STATE / f"{name}-{os.getpid()}").touch()


def payload() -> bytes:
    return json.dumps(
        {
            "pid": os.getpid(),
            "uid": os.getuid(),
            "version": version.VERSION,
            "config": CONFIG,
            "templates": TEMPLATES,
        }
    ).encode()


def stream(chunks: int, delay: float) -> Iterator[bytes]:
    mark("stream")
    for number in range(chunks):
        yield f"chunk {number}\n".encode()
        time.sleep(delay)
    yield payload()


def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    seconds = float(query.get("seconds", ["0"])[0])
    if environ.get("PATH_INFO") == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return stream(int(query.get("chunks", ["10"])[0]), seconds)
    if environ.get("PATH_INFO") == "/slow":
        mark("slow")
    time.sleep(seconds)
    start_response("200 OK", [("Content-Type", "application/json")])
    return iter([payload()])
