"""The ``/__reload__`` endpoint under Apache + mod_wsgi daemon mode (2 processes x 4 threads).

The probe app (``tests/probe_app.py``) answers with its pid; the WSGI script
turns the endpoint on with a password hash and a state directory that only
the daemon user (``www-data``) writes, in directories only root writes.
Restarts are counted from the pids in the responses.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest

from reloadmw.endpoint.passwords import hash_password
from tests.helpers import settle, wait_until
from tests.rig import (
    RESTART_TIMEOUT,
    ApacheServer,
    ProbeApp,
    Response,
    StartServer,
    Traffic,
    backdate,
    daemon_pids,
    http_burst,
    http_request,
    make_daemon_dir,
    wait_for_new_processes,
)

pytestmark = pytest.mark.server

PASSWORD = "open sesame"
HASH = hash_password(PASSWORD)  # the default cost, as in production
PATH = "/__reload__"


class AuthorizingApache(ApacheServer):
    """Apache that hands the Authorization header to the app, as the README says to."""

    def config_text(self) -> str:
        return super().config_text() + "WSGIPassAuthorization On\n"


def write_script(app: ProbeApp, *, hook: bool, state: Path | None = None) -> None:
    """Replace the rig's script with one that turns the endpoint on.

    The state directory (by default a new one for the daemon user) is the
    server user's alone, in directories only root can write: the endpoint
    refuses one that others could swap.
    """
    state = state or make_daemon_dir(app.directory / "reloadmw-state")
    lines = [
        "import logging",
        "",
        "import probe",
        "from reloadmw import ReloadMiddleware",
        "",
        "logging.basicConfig(level=logging.INFO)",
        "application = ReloadMiddleware(",
        f"    probe.application, interval=60.0, password={HASH!r},",
        f"    state_dir={str(state)!r},",
        ")",
    ]
    if hook:
        lines.append("reload_required = application.reload_required")
    app.script.write_text("\n".join(lines) + "\n")


def form_post(port: int, password: str) -> Response:
    body = urllib.parse.urlencode({"password": password}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return http_request(port, PATH, method="POST", body=body, headers=headers)


def basic(password: str) -> dict[str, str]:
    token = base64.b64encode(f"ops:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


Start = Callable[..., ApacheServer]


@pytest.fixture
def start(app_dir: Path, start_server: StartServer) -> Start:
    """Write the probe app with the endpoint on and start Apache on it."""

    def start_app(*, hook: bool) -> ApacheServer:
        app = ProbeApp(app_dir, hook=hook)
        write_script(app, hook=hook)
        # Files saved just before a daemon starts count as edits made during
        # its start-up and would restart it once; these tests restart by URL.
        backdate(app_dir)
        return start_server(AuthorizingApache(app.script))

    return start_app


def test_post_with_right_password_restarts_both_daemon_processes(
    start: Start,
) -> None:
    server = start(hook=False)
    old_pids = daemon_pids(server)

    with Traffic(server.port) as traffic:
        posted = http_request(server.port, PATH, method="POST", headers=basic(PASSWORD))
        new_pids = wait_for_new_processes(server, old_pids, lambda answer: True)

    assert posted.status == 202, posted.body
    answer = posted.json()
    assert answer["restart"] == "scheduled"
    assert answer["scope"] == "group"
    assert answer["strategy"] == "mod_wsgi-daemon"
    assert answer["pid"] in old_pids
    assert len(new_pids) == 2 and not new_pids & old_pids
    failed = traffic.failures
    assert not failed, f"{len(failed)} of {len(traffic.outcomes)} requests failed: {failed[:5]}"
    served_by = {answer["pid"] for answer in traffic.answers}
    assert served_by & old_pids and served_by & new_pids  # the traffic spanned the restart


def test_with_the_hook_no_old_pid_answers_after_the_202(start: Start) -> None:
    server = start(hook=True)
    old_pids = daemon_pids(server)

    posted = form_post(server.port, PASSWORD)  # no Authorization header needed
    answers: list[Response] = []

    def both_processes_new() -> bool:
        answers.extend(http_burst(server.port, "/?seconds=0.05"))
        return len({r.json()["pid"] for r in answers if r.status == 200}) >= 2

    wait_until(both_processes_new, RESTART_TIMEOUT, server.describe, poll=0)

    assert posted.status == 202, posted.body
    assert posted.json()["pid"] in old_pids
    seen = [(r.status, r.json().get("pid") if r.status == 200 else r.body) for r in answers]
    assert all(status == 200 for status, _ in seen), seen
    old = [pid for _, pid in seen if pid in old_pids]
    assert not old, f"answers after the 202 from old pids {old_pids}: {seen}"


def test_wrong_password_is_401_and_the_pids_stay(start: Start) -> None:
    server = start(hook=True)
    old_pids = daemon_pids(server)

    wrong = [
        http_request(server.port, PATH, method="POST", headers=basic(PASSWORD + "!")),
        form_post(server.port, "guess"),
        http_request(server.port, f"{PATH}?password={urllib.parse.quote(PASSWORD)}", method="POST"),
    ]
    status = http_request(server.port, PATH, headers=basic(PASSWORD))
    # A restart, had one been sent, would have begun within a second.
    settle(lambda: daemon_pids(server) == old_pids, 1.0, server.describe)

    assert [r.status for r in wrong] == [401, 401, 401]
    challenge = 'Basic realm="reloadmw", charset="UTF-8"'
    assert all(r.headers["www-authenticate"] == challenge for r in wrong)
    assert status.status == 200, status.body
    assert status.json()["process_group"] == "app"
    assert status.json()["strategy"] == "mod_wsgi-daemon"
    assert status.json()["restarts"] == 0
    assert "open sesame" not in server.logs()
    assert HASH.split("$")[3] not in server.logs()
