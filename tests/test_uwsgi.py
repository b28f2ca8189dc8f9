"""uWSGI (built by pip): a change reloads every worker, and no request fails.

Without ``--lazy-apps`` the master reloads (``uwsgi.reload()``); its SIGHUP makes
a single-threaded worker drop a connection it has just accepted, so reloadmw
asks for it only with ``--threads 2`` or more (else it warns and keeps
serving). With ``--lazy-apps`` each worker retires itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.helpers import wait_until
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


def uwsgi(app: ProbeApp, *options: str) -> CommandServer:
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
            *options,
        ],
        port,
    )  # fmt: skip


def test_uwsgi_binary_was_built_by_pip() -> None:
    assert UWSGI.is_file(), f"{UWSGI} is missing: pip install --no-cache-dir uwsgi failed?"


def test_module_edit_reloads_every_worker_without_failed_requests(
    app_dir: Path, start_server: StartServer
) -> None:
    app = ProbeApp(app_dir, interval=0.2, hook=False)
    server = start_server(uwsgi(app, "--threads", "2"))
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


def test_lazy_apps_workers_retire_themselves_without_failed_requests(
    app_dir: Path, start_server: StartServer
) -> None:
    app = ProbeApp(app_dir, interval=0.2, hook=False)
    server = start_server(uwsgi(app, "--lazy-apps"))
    old = daemon_pids(server)

    with Traffic(server.port) as traffic:
        app.set_version("2")
        new = wait_for_new_processes(server, old, lambda answer: answer["version"] == "2")

    assert traffic.failures == [], traffic.failures
    assert {r.json()["version"] for r in http_burst(server.port, "/?seconds=0.05")} == {"2"}
    # Each worker retired itself (no master reload) and its successor imported once.
    logs = server.logs()
    assert "binary reloading" not in logs, logs
    assert logs.count("Gracefully killing worker") >= 2, logs
    imports = settled_imports(app, server)
    assert sorted(version for _, version in imports) == ["1", "1", "2", "2"], imports
    assert {pid for pid, version in imports if version == "2"} == new, (imports, new)


def test_single_threaded_workers_without_lazy_apps_keep_serving_and_say_what_to_add(
    app_dir: Path, start_server: StartServer
) -> None:
    app = ProbeApp(app_dir, interval=0.2, hook=False)
    server = start_server(uwsgi(app))
    old = daemon_pids(server)

    with Traffic(server.port) as traffic:
        app.set_version("2")
        wait_until(lambda: "uWSGI without lazy-apps" in server.logs(), 30, server.describe)
        answers = {r.json()["pid"] for r in http_burst(server.port, "/?seconds=0.05")}

    assert traffic.failures == [], traffic.failures
    assert {answer["version"] for answer in traffic.answers} == {"1"}
    assert answers <= old
    logs = server.logs()
    assert "binary reloading" not in logs and "Gracefully killing worker" not in logs, logs
    assert "Add --lazy-apps" in logs and "--threads 2" in logs, logs
