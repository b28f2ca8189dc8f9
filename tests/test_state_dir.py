"""The state directory against other local users (issue 13, defect 6), as two real users.

The tests run as root (the victim, or ``www-data``) and plant things as
``nobody`` with ``setpriv``, as another user of the machine would. Those
that run code as another user are marked ``server``: they need Debian's
python3, which other users can run, not an interpreter under root's home.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from reloadmw import ReloadMiddleware
from reloadmw.endpoint.marker import marker_name
from reloadmw.endpoint.statedir import default_state_dir
from tests.helpers import run_as
from tests.rig import make_world_readable_dir
from tests.test_endpoint import HASH, PASSWORD, PATH, Probe, client, endpoint_maker

SQUATTER = "nobody"
as_other_users = pytest.mark.server
NOBODY = "uid 65534 (nobody)"

#: What the squatter leaves at the path, as ``nobody``: ``sys.argv[1]`` is the path.
PLANTS = {
    "directory": "import os, sys; os.mkdir(sys.argv[1], 0o777); os.chmod(sys.argv[1], 0o777)",
    "file": "import sys; open(sys.argv[1], 'w').close()",
    "symlink": "import os, sys; os.mkdir(sys.argv[1] + '.own'); "
    "os.symlink(sys.argv[1] + '.own', sys.argv[1])",
}


def plant(kind: str, path: Path) -> None:
    result = run_as(SQUATTER, PLANTS[kind], str(path))
    assert result.returncode == 0, result.stderr
    assert os.lstat(path).st_uid == 65534


@pytest.fixture
def shared_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A sticky, world-writable temp directory (like /tmp) that tempfile uses for the test."""
    path = Path(tempfile.mkdtemp(prefix="reloadmw-shared-tmp-"))
    path.chmod(0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- where it is ----------------------------------------------------------------------


def test_the_users_runtime_directory_is_preferred(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "run-user"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))

    assert default_state_dir() == str(runtime / "reloadmw")

    os.chown(runtime, 65534, 65534)  # someone else's: not a runtime directory of ours
    assert default_state_dir() == os.path.join(tempfile.gettempdir(), f"reloadmw-{os.geteuid()}")


# -- squatted at start-up ---------------------------------------------------------------


@as_other_users
@pytest.mark.parametrize("kind", list(PLANTS))
def test_a_squatted_default_state_dir_names_the_squatter_and_the_app_keeps_serving(
    shared_tmp: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    plant(kind, shared_tmp / f"reloadmw-{os.geteuid()}")
    caplog.set_level(logging.INFO, logger="reloadmw")
    probe = Probe()

    middleware = ReloadMiddleware(
        probe.app, password=HASH, root=str(tmp_path), restart=probe.restarts, ignore="*"
    )
    app = client(middleware)

    assert app.get("/page").text == "from the app"
    started = errors(caplog)
    assert len(started) == 1 and NOBODY in started[0] and "Remove it" in started[0]
    assert f"is a {kind} owned by {NOBODY}" in started[0]
    caplog.clear()
    app.post(PATH, {"password": PASSWORD}, status=503)
    assert probe.restarts.reasons == []
    assert any(NOBODY in m for m in errors(caplog))
    assert app.get("/page").text == "from the app"


@as_other_users
def test_a_squatted_state_dir_given_in_the_configuration_raises_at_start(
    shared_tmp: Path, tmp_path: Path
) -> None:
    plant("directory", shared_tmp / "app-state")

    with pytest.raises(ValueError, match=r"is a directory owned by uid 65534 \(nobody\)"):
        endpoint_maker(tmp_path)(state_dir=str(shared_tmp / "app-state"))


@as_other_users
def test_a_squatted_default_as_two_users_www_data_and_nobody(shared_tmp: Path) -> None:
    """Neither user is root: www-data runs the app, nobody got to its directory first."""
    www_data = 33
    plant("directory", shared_tmp / f"reloadmw-{www_data}")
    app_root = Path(tempfile.mkdtemp(prefix="reloadmw-victim-"))
    app_root.chmod(0o755)
    victim = f"""
import json, logging, sys
from webob import Request
from reloadmw import ReloadMiddleware
lines = []
handler = logging.Handler()
handler.emit = lambda record: lines.append(record.getMessage())
logging.getLogger("reloadmw").addHandler(handler)
app = ReloadMiddleware(lambda e, s: (s("200 OK", []), [b"served"])[1],
                       password={HASH!r}, root={str(app_root)!r}, ignore="*")
page = Request.blank("/page").get_response(app)
post = Request.blank({PATH!r}, POST={{"password": {PASSWORD!r}}}).get_response(app)
print(json.dumps({{"page": page.status_code, "post": post.status_code, "log": lines}}))
"""
    try:
        result = run_as("www-data", victim, env={"TMPDIR": str(shared_tmp), "HOME": "/"})
    finally:
        shutil.rmtree(app_root)

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert (outcome["page"], outcome["post"]) == (200, 503)
    assert any(NOBODY in line and "uid 33 (www-data)" in line for line in outcome["log"])


# -- swapped after start-up ---------------------------------------------------------------


@pytest.fixture
def parent() -> Iterator[Path]:
    """``parent`` (root's, 0755) in a directory only root can write, and others can reach."""
    reachable = make_world_readable_dir("reloadmw-parent-")
    (reachable / "parent").mkdir(mode=0o755)
    yield reachable / "parent"
    shutil.rmtree(reachable)


def test_a_state_dir_whose_parent_others_can_write_is_refused_at_start(
    tmp_path: Path, parent: Path
) -> None:
    parent.chmod(0o777)

    with pytest.raises(ValueError, match=r"'.*/parent' is writable by other users \(mode 0o777\)"):
        endpoint_maker(tmp_path)(state_dir=str(parent / "state"))


@as_other_users
def test_a_state_dir_swapped_by_another_user_after_start_restarts_no_one(
    tmp_path: Path, parent: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make = endpoint_maker(tmp_path)
    victim, probe = make(state_dir=str(parent / "state"))
    assert not victim.reload_required()
    caplog.set_level(logging.INFO, logger="reloadmw")

    parent.chmod(0o777)  # a mistake, later: now anyone can rename entries in it
    name = marker_name(f"{victim.root}\0{PATH}")
    swap = (
        "import os, sys; p = sys.argv[1]; os.rename(p + '/state', p + '/old'); "
        "os.mkdir(p + '/state'); open(p + '/state/' + sys.argv[2], 'w').write('restart!')"
    )
    result = run_as(SQUATTER, swap, str(parent), name)
    assert result.returncode == 0, result.stderr

    assert not victim.reload_required()
    client(victim).get("/page")
    assert probe.restarts.reasons == [] and victim.restarts == 0
    assert any("writable by other users (mode 0o777)" in m for m in errors(caplog))


def test_a_state_dir_replaced_by_a_symlink_is_not_followed_at_use(tmp_path: Path) -> None:
    make = endpoint_maker(tmp_path)
    middleware, probe = make()
    state = tmp_path / "state"
    elsewhere = tmp_path / "elsewhere"
    state.rename(elsewhere)
    state.symlink_to(elsewhere)

    client(middleware).post(PATH, {"password": PASSWORD}, status=503)

    assert probe.restarts.reasons == []
    assert not [p for p in elsewhere.iterdir() if p.name.endswith(".generation")]


def test_the_state_dir_is_created_private_and_recreated_if_removed(tmp_path: Path) -> None:
    make = endpoint_maker(tmp_path)
    middleware, probe = make()
    state = tmp_path / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    shutil.rmtree(state)  # a temp cleaner

    client(middleware).post(PATH, {"password": PASSWORD}, status=202)
    assert len(probe.restarts) == 1 and stat.S_IMODE(state.stat().st_mode) == 0o700


@as_other_users
def test_the_checkout_is_readable_by_the_other_users() -> None:
    # The two-user tests import reloadmw as nobody and www-data.
    result = run_as(SQUATTER, "import reloadmw, webob; print('ok')")
    assert result.stdout.strip() == "ok", result.stderr
