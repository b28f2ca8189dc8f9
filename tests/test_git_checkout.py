"""A real ``git checkout`` under Apache + mod_wsgi daemon mode (2x4, preloaded, with the hook).

A branch switch is what a developer does many times a day, and it is more
than a burst of saves: git unlinks and re-creates the files that differ,
deletes the modules the other branch does not have and creates the ones it
adds. The app answers the release constant of every module it imported, so
a response that mixes two branches shows. The WSGI script loads it by import
string, as the docs recommend, so that a checkout that breaks the import
leaves a process that answers 500 and heals itself.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import read_lines, wait_until
from tests.rig import (
    RESTART_TIMEOUT,
    ApacheServer,
    StartApache,
    Traffic,
    backdate,
    daemon_pids,
    http_burst,
    make_world_writable_file,
    wait_for_new_processes,
)

pytestmark = pytest.mark.server

PARTS = 10
#: Modules only one branch has: the other branch deletes them on checkout.
ONLY_ON = {"main": "tax", "feature": "discount"}

CATALOGUE = """\
import os
from pathlib import Path

from shop import {modules}

RELEASE = {release!r}
MODULES = [{modules}]
with open(Path(__file__).parent.parent / "imports.log", "a") as log:
    log.write(f"{{os.getpid()}} {{' '.join(sorted({{m.RELEASE for m in MODULES}}))}}\\n")


def releases():
    return sorted({{RELEASE, *(m.RELEASE for m in MODULES)}})
"""

APP = """\
import json
import os

from shop import catalogue


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    body = {"pid": os.getpid(), "releases": catalogue.releases()}
    return [json.dumps(body).encode()]
"""

SCRIPT = """\
import logging

from reloadmw import ReloadMiddleware

logging.basicConfig(level=logging.INFO)
application = ReloadMiddleware("shopapp:application", interval=0.1)
reload_required = application.reload_required
"""


def git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "dev",
        "GIT_AUTHOR_EMAIL": "dev@example.invalid",
        "GIT_COMMITTER_NAME": "dev",
        "GIT_COMMITTER_EMAIL": "dev@example.invalid",
    }
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def write_branch(repo: Path, release: str) -> None:
    """The ``shop`` package as ``release`` has it: its own parts, and its one extra module."""
    shop = repo / "shop"
    shop.mkdir(exist_ok=True)
    (shop / "__init__.py").write_text("")
    for other in ONLY_ON.values():
        (shop / f"{other}.py").unlink(missing_ok=True)
    extra = ONLY_ON[release]
    modules = [f"part{i:02d}" for i in range(PARTS)] + [extra]
    for module in modules:
        (shop / f"{module}.py").write_text(f"RELEASE = {release!r}\n")
    (shop / "catalogue.py").write_text(
        CATALOGUE.format(modules=", ".join(modules), release=release)
    )


def make_repo(repo: Path) -> Path:
    """A repository with branches ``main`` and ``feature``, ``main`` checked out.

    Returns the log each process appends the releases it imported to.
    """
    (repo / "shopapp.py").write_text(APP)
    (repo / "shop.wsgi").write_text(SCRIPT)
    (repo / ".gitignore").write_text("imports.log\n__pycache__/\n")
    git(repo, "init", "-q", "-b", "main")
    write_branch(repo, "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "main")
    git(repo, "checkout", "-q", "-b", "feature")
    write_branch(repo, "feature")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "feature")
    git(repo, "checkout", "-q", "main")
    backdate(repo)
    return make_world_writable_file(repo / "imports.log")


def test_switching_branches_back_and_forth_serves_one_branch_at_a_time_and_loses_nothing(
    app_dir: Path, start_apache: StartApache
) -> None:
    imports_log = make_repo(app_dir)
    server: ApacheServer = start_apache(app_dir / "shop.wsgi")
    pids = daemon_pids(server)

    with Traffic(server.port, clients=4) as traffic:
        for branch in ("feature", "main", "feature"):
            git(app_dir, "checkout", "-q", branch)
            pids = wait_for_new_processes(
                server, pids, lambda answer, b=branch: answer["releases"] == [b]
            )

    assert traffic.failures == [], traffic.failures
    served = [tuple(answer["releases"]) for answer in traffic.answers]
    assert [r for r in served if len(r) != 1] == [], "a response mixed two branches"
    assert {r[0] for r in served} == {"main", "feature"}
    # Each process imported one branch whole, and each checkout moved both processes once.
    imported = [line.split(" ", 1)[1] for line in read_lines(imports_log)]
    assert imported == ["main"] * 2 + ["feature"] * 2 + ["main"] * 2 + ["feature"] * 2, imported
    assert "Traceback" not in server.logs()


def test_a_module_deleted_by_mistake_then_checked_out_again_heals_both_processes(
    app_dir: Path, start_apache: StartApache
) -> None:
    make_repo(app_dir)
    server: ApacheServer = start_apache(app_dir / "shop.wsgi")
    pids = daemon_pids(server)

    (app_dir / "shop" / "tax.py").unlink()  # catalogue.py still imports it
    wait_until(  # the requests first: each is a check
        lambda: (
            {r.status for r in http_burst(server.port)} == {500}
            and server.logs().count("'shopapp:application' failed to load") == 2
        ),
        RESTART_TIMEOUT,
        server.describe,
    )
    assert "cannot import name 'tax' from 'shop'" in server.logs()

    # The restarted processes could not import it: they watch where it would be.
    git(app_dir, "checkout", "--", "shop/tax.py")
    wait_until(
        lambda: all(
            r.status == 200 and r.json()["releases"] == ["main"] for r in http_burst(server.port)
        ),
        RESTART_TIMEOUT,
        server.describe,
    )
    assert not daemon_pids(server) & pids
