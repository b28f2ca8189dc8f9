"""gunicorn: a change makes the arbiter replace every worker, and no request fails."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers import (
    CommandServer,
    ProbeApp,
    ServerProcess,
    daemon_pids,
    free_port,
    http_burst,
    wait_for_new_processes,
    wait_until,
)
from tests.traffic import Traffic, settled_imports, write_probe_module

GUNICORN = Path(sys.executable).parent / "gunicorn"


def gunicorn(app: ProbeApp, worker_class: str, *extra: str) -> CommandServer:
    port = free_port()
    return CommandServer(
        "gunicorn",
        [
            str(GUNICORN),
            "--workers", "2",
            "--worker-class", worker_class,
            "--threads", "4",
            "--bind", f"127.0.0.1:{port}",
            "--graceful-timeout", "20",
            "--no-control-socket",
            "--chdir", str(app.directory),
            *extra,
            write_probe_module(app),
        ],
        port,
    )  # fmt: skip


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_module_edit_gives_new_code_from_every_worker_and_no_failed_request(
    app_dir: Path, start_server: Callable[..., ServerProcess], worker_class: str
) -> None:
    app = ProbeApp(app_dir, interval=0.2, hook=False)
    server = start_server(gunicorn(app, worker_class))
    old = daemon_pids(server)
    assert {version for _, version in app.imports()} == {"1"}

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


def test_preloaded_app_is_not_hung_up_in_a_loop(
    app_dir: Path, start_server: Callable[..., ServerProcess]
) -> None:
    app = ProbeApp(app_dir, interval=0.2, hook=False)
    server = start_server(gunicorn(app, "sync", "--preload"))
    old = daemon_pids(server)

    app.set_version("2")
    with Traffic(server.port) as traffic:
        wait_until(lambda: "--preload" in server.logs(), 30, server.describe)

    assert traffic.failures == []
    assert "Hang up" not in server.logs()
    assert daemon_pids(server) == old
