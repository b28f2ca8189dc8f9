"""``python app.py`` servers (wsgiref, waitress): the ``exec`` strategy re-executes them."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from tests.helpers import wait_until
from tests.rig import (
    CommandServer,
    ProbeApp,
    Response,
    StartServer,
    backdate,
    free_port,
    http_get,
    served,
    settled_imports,
)

pytestmark = pytest.mark.server

#: ``python serve.py PORT``: the probe app wrapped in ReloadMiddleware (restart="auto").
SERVE = {
    "wsgiref": """\
from wsgiref.simple_server import make_server
make_server("127.0.0.1", int(sys.argv[1]), application).serve_forever()
""",
    "waitress": """\
import waitress
waitress.serve(application, host="127.0.0.1", port=int(sys.argv[1]), threads=4)
""",
}


def plain_server(app: ProbeApp, kind: str) -> CommandServer:
    script = app.directory / "serve.py"
    script.write_text(f"import sys\n{app.script.read_text()}{SERVE[kind]}")
    backdate(app.directory)
    port = free_port()
    return CommandServer(kind, [sys.executable, str(script), str(port)], port, cwd=app.directory)


@pytest.mark.parametrize("kind", ["wsgiref", "waitress"])
def test_edit_reexecutes_the_same_process_once(
    app_dir: Path, start_server: StartServer, kind: str
) -> None:
    app = ProbeApp(app_dir, interval=0.2, hook=False)
    server = start_server(plain_server(app, kind))
    first = http_get(server.port).json()

    app.set_version("2")
    second = served(server, lambda answer: answer["version"] == "2")

    assert second["pid"] == first["pid"]  # execv keeps the pid
    assert "re-executing" in server.logs()
    assert settled_imports(app, server) == [(first["pid"], "1"), (first["pid"], "2")]


def test_waitress_finishes_a_slow_request_before_reexecuting(
    app_dir: Path, start_server: StartServer
) -> None:
    app = ProbeApp(app_dir, interval=0.2, hook=False)
    server = start_server(plain_server(app, "waitress"))
    slow: list[Response] = []
    thread = threading.Thread(target=lambda: slow.append(http_get(server.port, "/slow?seconds=2")))
    thread.start()
    wait_until(lambda: app.marks("slow"), 10, server.describe)

    app.set_version("2")

    def detected() -> dict[str, str] | None:
        answer: dict[str, str] = http_get(server.port).json()
        return answer if "change detected" in server.logs() else None

    detecting = wait_until(detected, 10, server.describe)
    thread.join()

    assert detecting["version"] == "1"
    assert [(r.status, r.json()["version"]) for r in slow] == [(200, "1")]
    assert served(server, lambda answer: answer["version"] == "2")["pid"] == detecting["pid"]
