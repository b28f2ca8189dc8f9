"""A burst of saves is one restart, with consistent code, under Apache + mod_wsgi daemon mode.

The app imports 30 modules, each holding a VERSION constant, and answers all
30. The test rewrites the 30 files over about 300 ms (as ``git checkout`` or
a formatter does), several times, while clients keep requesting. With the
default ``quiet=0.2`` each daemon process restarts exactly once per burst
(counted from the line each process appends to ``imports.log`` at import),
no response and no import ever mixes versions, and once the burst has
settled the first responses carry the new version in every process.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import pytest
import webtest  # type: ignore[import-untyped]

from tests.helpers import Sandbox, edit, read_lines, settle, wait_until
from tests.rig import (
    RESTART_TIMEOUT,
    ApacheServer,
    StartApache,
    Traffic,
    http_burst,
    make_world_writable_file,
)

PARTS = 30
BURSTS = 4
INTERVAL = 0.1
QUIET = 0.2  # the default
WRITE_GAP = 0.01  # 30 files over about 300 ms
SETTLE = QUIET + INTERVAL + 0.3  # after the last write, every process's next check restarts it

APP = """\
import json, os, time
from pathlib import Path

{loading}{imports}

PARTS = [{parts}]
VERSIONS = [part.VERSION for part in PARTS]
with open(Path(__file__).with_name("imports.log"), "a") as log:
    log.write(f"{{os.getpid()}} {{','.join(VERSIONS)}}\\n")


def application(environ, start_response):
    if environ.get("QUERY_STRING") == "slow":
        time.sleep(0.1)  # keep a thread busy, so that concurrent requests reach both processes
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({{"pid": os.getpid(), "versions": [p.VERSION for p in PARTS]}}).encode()]
"""
LOADING = """\
with open(Path(__file__).with_name("loading.log"), "a") as log:
    log.write(f"{{os.getpid()}}\\n")
time.sleep({delay!r})
"""


def app_source(load_delay: float = 0.0) -> str:
    """The app: it imports the parts, appends their versions to ``imports.log`` and serves them.

    With ``load_delay`` it first appends its pid to ``loading.log`` and waits
    that long before it imports the parts, so that a test can start a burst
    just before it reads them.
    """
    return APP.format(
        loading=LOADING.format(delay=load_delay) if load_delay else "",
        imports="\n".join(f"import part{i:02d}" for i in range(PARTS)),
        parts=", ".join(f"part{i:02d}" for i in range(PARTS)),
    )


SCRIPT = f"""\
import logging
import burstapp
from reloadmw import ReloadMiddleware
from reloadmw.watch.patterns import DEFAULT_IGNORE

logging.basicConfig(level=logging.INFO)
# Not the library itself (an editable install): only the app's edits count.
application = ReloadMiddleware(
    burstapp.application, interval={INTERVAL!r}, ignore=(*DEFAULT_IGNORE, "reloadmw/*")
)
reload_required = application.reload_required
"""


def write_parts(app_dir: Path, version: int, gap: float = 0.0, *, atomic: bool = False) -> None:
    for i in range(PARTS):
        edit(app_dir / f"part{i:02d}.py", f"VERSION = '{version}'\n", atomic=atomic)
        if gap:
            time.sleep(gap)


def import_versions(log: Path) -> list[tuple[str, ...]]:
    """The versions each process imported, in import order."""
    return [tuple(line.split(" ", 1)[1].split(",")) for line in read_lines(log)]


def both_processes_serve(server: ApacheServer, version: int) -> bool:
    """Every concurrent answer has ``version`` everywhere; True once both processes answered."""
    answers = http_burst(server.port, "/?slow")
    assert [r.status for r in answers] == [200] * len(answers), server.describe()
    assert {tuple(r.json()["versions"]) for r in answers} == {(str(version),) * PARTS}
    return len({r.json()["pid"] for r in answers}) == 2


@pytest.mark.server
def test_each_burst_of_30_saves_is_one_restart_per_process_with_consistent_versions(
    app_dir: Path, start_apache: StartApache
) -> None:
    write_parts(app_dir, 0)
    (app_dir / "burstapp.py").write_text(app_source())
    script = app_dir / "burst.wsgi"
    script.write_text(SCRIPT)
    imports_log = make_world_writable_file(app_dir / "imports.log")
    server = start_apache(script)
    wait_until(lambda: len(read_lines(imports_log)) == 2, RESTART_TIMEOUT, server.describe)

    settled: dict[int, float] = {}
    with Traffic(server.port, clients=4, path="/?client=steady") as traffic:
        for version in range(1, BURSTS + 1):
            write_parts(app_dir, version, WRITE_GAP)
            settled[version] = time.monotonic() + SETTLE
            time.sleep(SETTLE)  # the burst settles: from now on, new code only
            wait_until(functools.partial(both_processes_serve, server, version), RESTART_TIMEOUT)

    assert traffic.outcomes, "the steady clients got no answer"
    assert traffic.failures == []
    answers = [(o.sent, tuple(o.answer["versions"])) for o in traffic.outcomes if o.answer]
    assert [versions for _, versions in answers if len(set(versions)) != 1] == []
    for version, after in settled.items():
        late = [v for sent, v in answers if sent > after and int(v[0]) < version]
        assert late == [], f"old code served after burst {version} settled"

    imported = import_versions(imports_log)
    assert [v for v in imported if len(set(v)) != 1] == [], "an import mixed versions"
    per_burst = {v: sum(1 for versions in imported if versions[0] == str(v)) for v in settled}
    assert per_burst == dict.fromkeys(settled, 2), (per_burst, server.describe())


# -- the quiet period, in-process ----------------------------------------------


def burst(
    sandbox: Sandbox, client: webtest.TestApp, files: list[Path], gap: float, back: float
) -> list[int]:
    """Rewrite ``files`` one by one, ``gap`` apart, requesting between writes.

    ``back`` dates each written file that many seconds into the past, as
    ``cp -p``, ``tar`` or ``rsync -t`` do when they restore older copies.
    Returns how many restarts had been triggered after each write.
    """
    seen = []
    for number, path in enumerate(files):
        edit(path, f"VERSION = 'burst {number}'\n")
        if back:
            then = time.time_ns() - int(back * 1e9)
            os.utime(path, ns=(then, then))
        client.get("/")
        seen.append(len(sandbox.restarts))
        time.sleep(gap)
    return seen


@pytest.mark.parametrize("back", [0.0, 3600.0], ids=["saved-now", "restored-older-copies"])
def test_a_burst_within_the_quiet_period_is_one_restart_once_it_settles(
    sandbox: Sandbox, back: float
) -> None:
    files = [sandbox.write(f"qpart{i}.py", "VERSION = '0'\n") for i in range(10)]
    client = sandbox.client(sandbox.middleware(quiet=0.3, track=("qpart*.py",)))

    during = burst(sandbox, client, files, gap=0.05, back=back)
    assert during == [0] * len(files), "restarted before the burst settled"
    wait_until(lambda: client.get("/") and len(sandbox.restarts) == 1, 5.0)
    settle(lambda: client.get("/") and len(sandbox.restarts) == 1, 0.4)

    assert sandbox.restarts.reasons == [sorted(str(f) for f in files)]


def test_a_change_older_than_the_quiet_period_restarts_on_the_first_check(
    sandbox: Sandbox,
) -> None:
    watched = sandbox.write("old_change.py", "VERSION = '0'\n")
    middleware = sandbox.middleware(quiet=0.3, interval=10, track=("old_change.py",))
    edit(watched, "VERSION = '1'\n")
    time.sleep(0.35)  # the edit is older than quiet when the first request checks

    sandbox.client(middleware).get("/")

    assert sandbox.restarts.reasons == [[str(watched)]]
