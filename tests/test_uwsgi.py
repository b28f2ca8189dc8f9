"""uWSGI (built by pip): a change reloads the instance through ``uwsgi.reload()``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.rig import (
    CommandServer,
    ProbeApp,
    StartServer,
    Traffic,
    daemon_pids,
    free_port,
    http_burst,
    settled_imports,
    wait_for_new_processes,
    write_probe_module,
)

pytestmark = pytest.mark.server

UWSGI = Path(sys.executable).parent / "uwsgi"


def uwsgi(app: ProbeApp) -> CommandServer:
    port = free_port()
    return CommandServer(
        "uwsgi",
        [
            str(UWSGI),
            "--master",
            "--processes", "2",
            "--http-socket", f"127.0.0.1:{port}",
            "--virtualenv", sys.prefix,
            "--chdir", str(app.directory),
            "--pythonpath", str(app.directory),
            "--module", write_probe_module(app),
            "--need-app",
            "--die-on-term",
            "--strict",
            "--disable-logging",
        ],
        port,
    )  # fmt: skip


def test_uwsgi_binary_was_built_by_pip() -> None:
    assert UWSGI.is_file(), f"{UWSGI} is missing: pip install --no-cache-dir uwsgi failed?"


def test_module_edit_reloads_every_worker_without_failed_requests(
    app_dir: Path, start_server: StartServer
) -> None:
    app = ProbeApp(app_dir, interval=0.2, hook=False)
    server = start_server(uwsgi(app))
    old = daemon_pids(server)

    with Traffic(server.port) as traffic:
        app.set_version("2")
        new = wait_for_new_processes(server, old, lambda answer: answer["version"] == "2")

    assert traffic.failures == [], traffic.failures
    assert {r.json()["version"] for r in http_burst(server.port, "/?seconds=0.05")} == {"2"}
    # uwsgi.reload(): the master re-executes itself, once, gracefully.
    logs = server.logs()
    assert logs.count("binary reloading uWSGI") == 1, logs
    assert "gracefully (RE)spawned uWSGI master process" in logs, logs
    # The master re-executed itself in place: it must not see the old edit as new again.
    imports = settled_imports(app, server)
    assert [version for _, version in imports] == ["1", "2"], imports
    assert new
