"""ReloadMiddleware under Debian's Apache 2.4 + mod_wsgi daemon mode (2 processes x 4 threads).

Every test starts its own Apache on a free loopback port with the probe app
(``tests/probe_app.py``) and counts restarts from evidence: the pids in the
responses and the lines each process appends to ``state/imports.log``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import edit, settle, stat_key, wait_until
from tests.rig import (
    RESTART_TIMEOUT,
    ProbeApp,
    Response,
    StartApache,
    daemon_pids,
    http_burst,
    http_get,
    runs_as_root,
    wait_for_new_processes,
)

pytestmark = pytest.mark.server

INTERVAL = 0.3


def test_rig_runs_two_daemon_processes_as_www_data(
    app_dir: Path, start_apache: StartApache
) -> None:
    script = app_dir / "pid.wsgi"
    script.write_text(
        "import json, os\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'application/json')])\n"
        "    return [json.dumps({'pid': os.getpid(), 'uid': os.getuid(),\n"
        "        'group': environ['mod_wsgi.process_group']}).encode()]\n"
    )
    server = start_apache(script)

    answers = [r.json() for r in http_burst(server.port, "/")]
    pids = daemon_pids(server)

    assert len(pids) == 2
    assert {answer["group"] for answer in answers} == {"app"}
    expected_user = "www-data" if runs_as_root() else pwd.getpwuid(os.getuid()).pw_name
    assert {pwd.getpwuid(answer["uid"]).pw_name for answer in answers} == {expected_user}


def test_edited_module_is_served_by_new_processes(app_dir: Path, start_apache: StartApache) -> None:
    app = ProbeApp(app_dir, interval=INTERVAL, hook=False)
    server = start_apache(app.script)
    old_pids = daemon_pids(server)

    app.set_version("2")

    new_pids = wait_for_new_processes(server, old_pids, lambda a: a["version"] == "2")
    # Several intervals of traffic later, still the same two processes: one
    # restart per process for one change, and no restart loop.
    settle(
        lambda: {r.json()["pid"] for r in http_burst(server.port)} <= new_pids,
        5 * INTERVAL,
        server.describe,
    )
    assert sorted(pid for pid, version in app.imports() if version == "2") == sorted(new_pids)


def test_hook_makes_first_response_after_edit_new_in_every_process(
    app_dir: Path, start_apache: StartApache
) -> None:
    app = ProbeApp(app_dir, interval=INTERVAL, hook=True)
    server = start_apache(app.script)
    old_pids = daemon_pids(server)

    app.set_version("2")
    # Semantics under test, not readiness: once the interval (and the
    # middleware's quiet period) has passed, no old answer may come back.
    time.sleep(INTERVAL + 0.5)
    answers: list[dict[str, Any]] = []

    def every_process_answered_new() -> bool:
        answers.append(http_get(server.port, "/").json())
        assert answers[-1]["version"] == "2", f"old code answered after the edit: {answers}"
        return len({a["pid"] for a in answers}) == 2

    wait_until(every_process_answered_new, RESTART_TIMEOUT, server.describe, poll=0)
    assert not {a["pid"] for a in answers} & old_pids


def test_requests_in_flight_finish_before_the_restart(
    app_dir: Path, start_apache: StartApache
) -> None:
    app = ProbeApp(app_dir, interval=INTERVAL, hook=False)
    server = start_apache(app.script, shutdown_timeout=15)
    old_pids = daemon_pids(server)
    results: dict[str, Response] = {}

    def fetch(name: str, path: str) -> None:
        results[name] = http_get(server.port, path)

    in_flight = [
        threading.Thread(target=fetch, args=("slow", "/slow?seconds=2")),
        threading.Thread(target=fetch, args=("stream", "/stream?chunks=10&seconds=0.2")),
    ]
    for thread in in_flight:
        thread.start()
    wait_until(lambda: app.marks("slow") and app.marks("stream"), 10, server.describe)

    app.set_version("2")
    time.sleep(INTERVAL + 0.5)  # the change is due; the next requests detect it
    detecting = http_burst(server.port, "/?seconds=0.1")
    for thread in in_flight:
        thread.join(30)

    assert [r.status for r in detecting] == [200] * len(detecting)
    slow, stream = results["slow"], results["stream"]
    # The change was detected (by the first of these) while both were in flight.
    assert min(r.finished_at for r in detecting) < min(slow.finished_at, stream.finished_at)
    assert slow.status == 200 and slow.json()["version"] == "1"
    assert stream.status == 200
    lines = stream.body.decode().splitlines()
    assert lines[:10] == [f"chunk {n}" for n in range(10)]
    assert '"version": "1"' in lines[10]
    new_pids = wait_for_new_processes(server, old_pids, lambda a: a["version"] == "2")
    assert slow.json()["pid"] in old_pids - new_pids


def test_edited_tracked_ini_restarts(app_dir: Path, start_apache: StartApache) -> None:
    app = ProbeApp(app_dir, interval=INTERVAL, track=["config.ini"])
    server = start_apache(app.script)
    old_pids = daemon_pids(server)

    edit(app.config_file, "[app]\ncolour = blue\n")

    wait_for_new_processes(server, old_pids, lambda a: "blue" in a["config"])


def test_deleted_tracked_file_restarts(app_dir: Path, start_apache: StartApache) -> None:
    app = ProbeApp(app_dir, interval=INTERVAL, track=["config.ini"])
    server = start_apache(app.script)
    old_pids = daemon_pids(server)

    app.config_file.unlink()

    wait_for_new_processes(server, old_pids, lambda a: a["config"] is None)


def test_older_copy_restored_over_module_restarts(
    app_dir: Path, tmp_path: Path, start_apache: StartApache
) -> None:
    app = ProbeApp(app_dir, interval=INTERVAL, version="old")
    hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(app.version_file, ns=(hour_ago, hour_ago))
    backup = tmp_path / "version.py"
    shutil.copy2(app.version_file, backup)
    app.set_version("new")
    server = start_apache(app.script)
    old_pids = daemon_pids(server)
    before = stat_key(app.version_file)

    shutil.copy2(backup, app.version_file)

    after = stat_key(app.version_file)
    assert after[0] < before[0] and after[1:] == before[1:], "only the mtime, backwards"
    wait_for_new_processes(server, old_pids, lambda a: a["version"] == "old")


def test_new_file_in_tracked_directory_restarts(app_dir: Path, start_apache: StartApache) -> None:
    app = ProbeApp(app_dir, interval=INTERVAL, track=["templates/"])
    server = start_apache(app.script)
    old_pids = daemon_pids(server)

    (app.templates / "new.html").write_text("<p>new</p>\n")

    wait_for_new_processes(server, old_pids, lambda a: "new.html" in a["templates"])


def test_edit_made_while_app_imports_is_not_missed(
    app_dir: Path, start_apache: StartApache
) -> None:
    app = ProbeApp(app_dir, interval=INTERVAL, import_sleep=2.0)
    server = start_apache(app.script, wait=False)
    wait_until(lambda: app.marks("importing"), 30, server.describe)

    app.set_version("2")  # version.py "1" is loaded; the middleware is not built yet

    server.wait_ready()
    loaded_old = {pid for pid, version in app.imports() if version == "1"}
    assert loaded_old, app.imports()
    wait_for_new_processes(server, loaded_old, lambda a: a["version"] == "2")


def test_hello_example_serves_the_edited_greeting(app_dir: Path, start_apache: StartApache) -> None:
    hello = app_dir / "hello"
    shutil.copytree(Path(__file__).parent.parent / "examples" / "hello", hello)
    server = start_apache(hello / "hello.wsgi")
    assert "Hello from reloadmw!" in http_get(server.port).body.decode()

    edit(hello / "greeting.py", 'TEXT = "Edited & saved"\n')

    wait_until(
        lambda: "<h1>Edited &amp; saved</h1>" in http_get(server.port).body.decode(),
        RESTART_TIMEOUT,
        server.describe,
    )
