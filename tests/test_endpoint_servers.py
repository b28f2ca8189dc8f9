"""The endpoint under attack on real servers (issue 13, defects 2 and 3).

Apache + mod_wsgi daemon mode (2 processes x 4 threads, as ``www-data``) and
gunicorn (2 workers x 4 threads), each serving the probe app behind the
endpoint with the default 600,000-iteration hash: a cross-site POST and a
rebinding Host carrying the right password are refused while curl's POST
restarts, and 40 concurrent wrong guesses from one address get 5 password
checks across the whole group.
"""

from __future__ import annotations

import urllib.parse
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import settle
from tests.rig import (
    SETTLE,
    ProbeApp,
    Response,
    ServerProcess,
    StartServer,
    backdate,
    daemon_pids,
    gunicorn,
    http_request,
    wait_for_new_processes,
    write_probe_module,
)
from tests.test_apache_endpoint import PASSWORD, PATH, AuthorizingApache, basic, write_script

pytestmark = pytest.mark.server

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
GUESSES = 40


def apache(app: ProbeApp) -> ServerProcess:
    write_script(app, hook=True)
    backdate(app.directory)
    return AuthorizingApache(app.script)


def gunicorn_2(app: ProbeApp) -> ServerProcess:
    state = app.directory / "reloadmw-state"  # gunicorn runs as root here
    state.mkdir(mode=0o700)
    write_script(app, hook=False, state=state)
    return gunicorn(app.directory, write_probe_module(app))


SERVERS: dict[str, Callable[[ProbeApp], ServerProcess]] = {
    "apache-2x4": apache,
    "gunicorn-w2": gunicorn_2,
}


@pytest.fixture(params=list(SERVERS))
def server(
    request: pytest.FixtureRequest, app_dir: Path, start_server: StartServer
) -> ServerProcess:
    return start_server(SERVERS[request.param](ProbeApp(app_dir, hook=False)))


def post(server: ServerProcess, headers: dict[str, str], body: bytes | None = None) -> Response:
    return http_request(server.port, PATH, method="POST", headers=headers, body=body)


def form(password: str) -> bytes:
    return urllib.parse.urlencode({"password": password}).encode()


def test_a_cross_site_post_is_refused_and_curl_still_restarts(server: ServerProcess) -> None:
    old = daemon_pids(server)

    refused = [
        post(server, {**basic(PASSWORD), "Origin": "https://evil.example"}),
        post(server, {**FORM, "Sec-Fetch-Site": "cross-site"}, form(PASSWORD)),
        post(server, {**basic(PASSWORD), "Content-Type": "text/plain", "Origin": "null"}, b"x"),
        post(server, {**basic(PASSWORD), "Host": "evil.example", "Origin": "http://evil.example"}),
    ]
    settle(lambda: daemon_pids(server) == old, SETTLE, server.describe)

    assert [r.status for r in refused] == [403] * 4, [r.body for r in refused]
    logs = server.logs()
    assert logs.count("cross-site request") == 3, logs
    assert "'evil.example' over plain http is neither an IP address nor localhost" in logs
    assert post(server, basic(PASSWORD)).status == 202  # curl sends neither header
    assert not wait_for_new_processes(server, old, lambda answer: True) & old


def test_40_concurrent_wrong_guesses_get_5_password_checks_across_the_group(
    server: ServerProcess,
) -> None:
    old = daemon_pids(server)

    with ThreadPoolExecutor(max_workers=GUESSES) as pool:
        guesses = list(pool.map(lambda _: post(server, FORM, form("guess")), range(GUESSES)))
        right = list(pool.map(lambda _: post(server, basic(PASSWORD)), range(8)))

    assert Counter(r.status for r in guesses) == {401: 5, 429: GUESSES - 5}
    assert [r.status for r in right] == [429] * 8  # locked out in every process
    logs = server.logs()
    assert logs.count("wrong password") == 5, logs
    assert logs.count("refusing it (429)") == 1, logs
    assert daemon_pids(server) == old
