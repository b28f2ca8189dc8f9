"""Code loaded while its files change never serves through the hook (Apache daemon mode 2x4).

A daemon process whose import overlaps a burst of saves may hold some modules
old and some new. reloadmw marks it tainted; mod_wsgi's ``reload_required``
hook then holds each request until the files have been quiet for ``quiet``
seconds, restarts the process and replays the request in a fresh one:

- start-up bursts: Apache starts, 4 clients start asking, and as the first
  process begins to load, 30 imported modules are rewritten over 300 ms; 4
  times. Preloaded (the recommended ``WSGIScriptAlias ... process-group=
  application-group=``): 0 mixed responses, 0 failures, and each burst ends on
  the new version in both processes. Loaded lazily (no ``application-group``):
  mod_wsgi serves a process's first request without the hook, so at most that
  response is mixed;
- a write during the probe app's import, at start-up or in a process restarted
  by an earlier edit: that process never answers, and the answers carry the
  last version.

``pytest -s`` prints the counts: mixed, failed, changes seen (the "change
detected" lines) and the longest hold.
"""

from __future__ import annotations

import re
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import read_lines, wait_until
from tests.rig import (
    RESTART_TIMEOUT,
    ApacheServer,
    Outcome,
    ProbeApp,
    StartApache,
    Traffic,
    backdate,
    daemon_pids,
    http_burst,
    make_world_writable_file,
)
from tests.test_bursts import (
    PARTS,
    SCRIPT,
    WRITE_GAP,
    app_source,
    import_versions,
    write_parts,
)

pytestmark = pytest.mark.server

BURSTS = 4
#: Seconds between the app's mark in ``loading.log`` and its imports: the burst (30
#: writes over 0.3 s) starts at the mark, so the app reads the first parts new and
#: the others old, and its load ends while the burst is still being written.
LOAD_DELAY = 0.15
HELD = re.compile(r"reloadmw \(pid=(\d+)\): change detected in .*; held this request ([\d.]+)s")
DETECTED = re.compile(r"reloadmw \(pid=(\d+)\): change detected in ")


def hold_report(server: ApacheServer) -> dict[str, Any]:
    """What the server's log says: changes seen (per pid), and the holds."""
    logs = server.logs()
    holds = [(int(pid), float(seconds)) for pid, seconds in HELD.findall(logs)]
    return {
        "changes_seen": len(DETECTED.findall(logs)),
        "holds": len(holds),
        "longest_hold_s": max((seconds for _, seconds in holds), default=0.0),
        "held_pids": {pid for pid, _ in holds},
    }


def mixed(outcome: Outcome) -> bool:
    return outcome.answer is not None and len(set(outcome.answer["versions"])) > 1


def accepts(port: int) -> bool:
    """True once Apache listens: a TCP connection, with no request that could load the app."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def serves_version(server: ApacheServer, version: int) -> bool:
    """Both processes answer with every part at ``version``; no answer ever mixes."""
    answers = [r.json() for r in http_burst(server.port, "/?slow")]
    assert [a for a in answers if len(set(a["versions"])) > 1] == [], answers
    settled = all(a["versions"] == [str(version)] * PARTS for a in answers)
    return settled and len({a["pid"] for a in answers}) == 2


class StartupBursts:
    """The burst app in ``app_dir``; each round starts Apache and a burst together."""

    def __init__(self, app_dir: Path, start_apache: StartApache, preload: bool) -> None:
        self.app_dir = app_dir
        self.start_apache = start_apache
        self.preload = preload
        self.script = app_dir / "burst.wsgi"
        self.imports_log = make_world_writable_file(app_dir / "imports.log")
        self.loading_log = make_world_writable_file(app_dir / "loading.log")
        (app_dir / "burstapp.py").write_text(app_source(LOAD_DELAY))
        self.script.write_text(SCRIPT)
        self.outcomes: list[Outcome] = []
        self.reports: list[dict[str, Any]] = []

    def round(self, version: int) -> None:
        """Start Apache with the parts at ``version - 1``; burst to ``version`` as it loads."""
        write_parts(self.app_dir, version - 1)
        backdate(self.app_dir)  # saved before the server starts: no change
        self.loading_log.write_text("")
        server = self.start_apache(self.script, wait=False, preload=self.preload)
        try:
            wait_until(lambda: accepts(server.port), RESTART_TIMEOUT, server.describe)
            # Preloaded, each process loads as it starts; lazily, on its first request.
            with Traffic(server.port, clients=4) as traffic:
                wait_until(lambda: read_lines(self.loading_log), RESTART_TIMEOUT, server.describe)
                write_parts(self.app_dir, version, WRITE_GAP, atomic=True)
                wait_until(lambda: serves_version(server, version), RESTART_TIMEOUT)
            self.outcomes += traffic.outcomes
            self.reports.append(hold_report(server))
        finally:
            server.stop()

    def report(self) -> dict[str, Any]:
        imports = import_versions(self.imports_log)
        return {
            "responses": len(self.outcomes),
            "mixed": sum(1 for o in self.outcomes if mixed(o)),
            "failed": sum(1 for o in self.outcomes if o.answer is None),
            "mixed_imports": sum(1 for v in imports if len(set(v)) > 1),
            "changes_seen": sum(r["changes_seen"] for r in self.reports),
            "holds": sum(r["holds"] for r in self.reports),
            "longest_hold_s": max(r["longest_hold_s"] for r in self.reports),
        }


@pytest.mark.parametrize("preload", [True, False], ids=["preloaded", "lazily-loaded"])
def test_processes_loaded_during_a_burst_serve_no_mixed_code(
    app_dir: Path, start_apache: StartApache, preload: bool
) -> None:
    bursts = StartupBursts(app_dir, start_apache, preload)
    for version in range(1, BURSTS + 1):
        bursts.round(version)

    report = bursts.report()
    print(f"\nstart-up bursts, {'preloaded' if preload else 'lazily loaded'}: {report}")
    assert report["mixed_imports"] > 0, "no process loaded a mix: the test tested nothing"
    assert [o.error for o in bursts.outcomes if o.answer is None] == []
    if preload:
        assert report["mixed"] == 0, report
    else:
        # mod_wsgi serves the request that loads the script without the hook.
        per_process = Counter(o.answer["pid"] for o in bursts.outcomes if o.answer and mixed(o))
        assert all(count == 1 for count in per_process.values()), per_process


# -- a write that lands during a load ------------------------------------------------------

#: The probe app's script marks "importing" and sleeps this long before it makes the
#: middleware: its load ends then.
LOAD_SLEEP = 2.0
WRITE_EVERY = 0.1  # the files are never quiet (quiet=0.2) while the writer writes


def loaders(app: ProbeApp, known: set[int]) -> set[int]:
    """The two processes now importing, once both are (none of ``known``)."""
    found = set(app.marks("importing")) - known
    return found if len(found) == 2 else set()


def write_through_load(
    app: ProbeApp, server: ApacheServer, known: set[int], first: int
) -> tuple[set[int], str]:
    """Once two new processes import, save ``first``, ``first + 1``... until 1 s after their load.

    Returns those processes and the last version written.
    """
    importing = wait_until(lambda: loaders(app, known), RESTART_TIMEOUT, server.describe)
    versions = [str(first + n) for n in range(int((LOAD_SLEEP + 1.0) / WRITE_EVERY))]
    for version in versions:
        app.set_version(version)
        time.sleep(WRITE_EVERY)
    return importing, versions[-1]


def served_by_new(traffic: Traffic, old: set[int]) -> bool:
    """The last answers came from two processes other than ``old``."""
    return len({a["pid"] for a in traffic.answers[-8:]} - old) == 2


def check_held(server: ApacheServer, traffic: Traffic, tainted: set[int]) -> None:
    """The tainted processes answered nothing; one held requests until quiet, then restarted.

    A held process keeps its threads, so the clients' requests may all wait in
    one of them; the other then sees quiet files at its first request.
    """
    answers = traffic.answers
    report = {
        "responses": len(answers),
        "failed": len(traffic.failures),
        "from_tainted": sum(1 for a in answers if a["pid"] in tainted),
        **hold_report(server),
    }
    print(f"\nwrite during a load: {report}")
    assert traffic.failures == [], traffic.failures
    assert report["from_tainted"] == 0, (answers, server.describe())
    assert report["held_pids"] and report["held_pids"] <= tainted, server.describe()


def test_a_write_during_the_load_holds_the_process_until_quiet_then_replays_in_a_fresh_one(
    app_dir: Path, start_apache: StartApache
) -> None:
    app = ProbeApp(app_dir, import_sleep=LOAD_SLEEP)
    backdate(app_dir)
    server = start_apache(app.script, wait=False)
    wait_until(lambda: accepts(server.port), RESTART_TIMEOUT, server.describe)

    with Traffic(server.port, clients=4) as traffic:
        tainted, last = write_through_load(app, server, set(), first=2)
        wait_until(lambda: served_by_new(traffic, tainted), RESTART_TIMEOUT, server.describe)

    check_held(server, traffic, tainted)
    assert {a["version"] for a in traffic.answers} == {last}, "the replays see the new code"
    assert [v for pid, v in app.imports() if pid in tainted] == ["1", "1"]


def test_a_process_restarted_by_an_edit_whose_load_overlaps_a_second_write_is_held(
    app_dir: Path, start_apache: StartApache
) -> None:
    app = ProbeApp(app_dir, import_sleep=LOAD_SLEEP)
    backdate(app_dir)
    server = start_apache(app.script)
    first = daemon_pids(server)  # both loaded before the first edit

    with Traffic(server.port, clients=4) as traffic:
        app.set_version("2")  # the hook restarts both processes, which load "2"
        restarted, last = write_through_load(app, server, first, first=3)
        wait_until(
            lambda: served_by_new(traffic, first | restarted), RESTART_TIMEOUT, server.describe
        )

    check_held(server, traffic, restarted)
    assert {a["version"] for a in traffic.answers} <= {"1", last}, "served while tainted"
    assert traffic.answers[-1]["version"] == last
    assert sorted(v for pid, v in app.imports() if pid in restarted) == ["2", "2"]
