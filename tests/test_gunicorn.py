"""gunicorn: a change makes the arbiter replace every worker, and no request fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import wait_until
from tests.rig import (
    CommandServer,
    ProbeApp,
    StartServer,
    Traffic,
    daemon_pids,
    gunicorn,
    http_burst,
    settled_imports,
    wait_for_new_processes,
    write_probe_module,
)

pytestmark = pytest.mark.server


def probe_gunicorn(app: ProbeApp, worker_class: str, *options: str) -> CommandServer:
    return gunicorn(app.directory, write_probe_module(app), *options, worker_class=worker_class)


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_module_edit_gives_new_code_from_every_worker_and_no_failed_request(
    app_dir: Path, start_server: StartServer, worker_class: str
) -> None:
    app = ProbeApp(app_dir, interval=0.2, hook=False)
    server = start_server(probe_gunicorn(app, worker_class))
    old = daemon_pids(server)
    assert {version for _, version in app.imports()} == {"1"}
    assert f"Using worker: {worker_class}" in server.logs()

    with Traffic(server.port) as traffic:
        app.set_version("2")
        new = wait_for_new_processes(server, old, lambda answer: answer["version"] == "2")

    assert traffic.failures == [], traffic.failures
    assert {answer["version"] for answer in traffic.answers} == {"1", "2"}
    # Once both new workers answered, nothing old is served any more.
    assert {r.json()["version"] for r in http_burst(server.port, "/?seconds=0.05")} == {"2"}
    imports = settled_imports(app, server)
    assert new <= {pid for pid, version in imports if version == "2"}
    assert server.logs().count("Hang up") == 1  # one SIGHUP, even if both workers saw the edit


def test_preloaded_app_is_not_hung_up_in_a_loop(app_dir: Path, start_server: StartServer) -> None:
    app = ProbeApp(app_dir, interval=0.2, hook=False)
    server = start_server(probe_gunicorn(app, "sync", "--preload"))
    old = daemon_pids(server)

    app.set_version("2")
    with Traffic(server.port) as traffic:
        wait_until(lambda: "--preload" in server.logs(), 30, server.describe)

    assert traffic.failures == []
    assert "Hang up" not in server.logs()
    assert daemon_pids(server) == old
