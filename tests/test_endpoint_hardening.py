"""The endpoint under attack (issue 13), in process: each test failed before its fix."""

from __future__ import annotations

import io
import logging
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from webob import Request

from reloadmw import ReloadMiddleware
from reloadmw.endpoint.ratelimit import FailureLimiter
from reloadmw.endpoint.statedir import StateDir
from tests.helpers import counting_password_checks, use_limiter
from tests.test_endpoint import (
    CLIENT,
    PASSWORD,
    PATH,
    MakeMiddleware,
    basic,
    call,
    client,
    close,
    endpoint_maker,
)

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def make(tmp_path: Path) -> MakeMiddleware:
    return endpoint_maker(tmp_path)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# -- defect 8: an aborted upload -------------------------------------------------------


class Aborted(io.RawIOBase):
    """A request body whose client went away: mod_wsgi raises OSError from read()."""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        raise OSError("request data read error")


@pytest.mark.parametrize("authorization", [True, False], ids=["basic", "form"])
def test_an_aborted_upload_is_400_logged_and_restarts_nothing(
    make: MakeMiddleware, caplog: pytest.LogCaptureFixture, authorization: bool
) -> None:
    middleware, probe = make()
    caplog.set_level(logging.INFO, logger="reloadmw")
    headers = {"Authorization": basic(PASSWORD)} if authorization else {}

    answer = call(
        middleware,
        headers=headers,
        CONTENT_LENGTH="100",
        CONTENT_TYPE=FORM,
        **{"wsgi.input": Aborted()},
    )
    close(answer)

    assert answer.status == 400
    assert probe.restarts.reasons == [] and probe.calls == []
    assert any(
        CLIENT in m and "reading the request body failed (request data read error)" in m
        for m in warnings(caplog)
    )


# -- defect 9: "by None" ---------------------------------------------------------------


def test_a_restart_from_an_address_that_does_not_parse_names_it(
    make: MakeMiddleware, caplog: pytest.LogCaptureFixture
) -> None:
    middleware, probe = make()
    caplog.set_level(logging.INFO, logger="reloadmw")

    answer = call(middleware, headers={"Authorization": basic(PASSWORD)}, REMOTE_ADDR="unix:")
    close(answer)

    assert answer.status == 202 and len(probe.restarts) == 1
    requested = [r.getMessage() for r in caplog.records if "requested through" in r.getMessage()]
    assert requested and "by an address that does not parse ('unix:')" in requested[0]
    assert "None" not in caplog.text


# -- defect 9: accepted but wrong --------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "address"),
    [
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
        ("::ffff:10.0.0.0/104", "10.1.2.3"),
        ("::ffff:10.0.0.0/104", "::ffff:10.9.9.9"),
    ],
)
def test_an_ipv4_mapped_allow_from_entry_matches_its_ipv4_client(
    make: MakeMiddleware, entry: str, address: str
) -> None:
    middleware, probe = make(allow_from=[entry])

    client(middleware, address).post(PATH, {"password": PASSWORD}, status=202)
    client(middleware, "10.255.0.1" if "127" in entry else "11.0.0.1").get(PATH, status=403)
    assert len(probe.restarts) == 1


@pytest.mark.parametrize(
    "endpoint", ["/a%20b", "/%5F_reload__", "/ops/%2e%2e/reload", "/ops/../reload", "/a//b", "/./x"]
)
def test_an_endpoint_path_a_server_rewrites_is_refused_at_start(
    make: MakeMiddleware, endpoint: str
) -> None:
    # Servers decode and normalise PATH_INFO, so such a path could never match a request.
    with pytest.raises(ValueError, match=re.escape(f"endpoint={endpoint!r} could never match")):
        make(endpoint=endpoint)


# -- defect 2: cross-site request forgery and DNS rebinding -------------------------------

BODIES = {
    "form": (FORM, f"password={PASSWORD}".replace(" ", "+").encode()),
    "text": ("text/plain", b"password=x"),
    "multipart": ("multipart/form-data; boundary=x", b"--x--\r\n"),
    "empty": (None, b""),
}


@pytest.mark.parametrize("body", list(BODIES))
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:8080"},  # another port of the same host: another origin
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://localhost:80", "Sec-Fetch-Site": "cross-site"},
    ],
    ids=["origin", "null-origin", "other-port", "fetch-cross", "fetch-same-site", "both"],
)
def test_a_cross_site_post_is_403_logged_before_any_password_check(
    make: MakeMiddleware, caplog: pytest.LogCaptureFixture, headers: dict[str, str], body: str
) -> None:
    middleware, probe = make()
    checks = counting_password_checks(middleware)
    caplog.set_level(logging.INFO, logger="reloadmw")
    content_type, data = BODIES[body]
    sent = {**headers, "Authorization": basic(PASSWORD)} if body != "form" else headers

    response = client(middleware).post(
        PATH, data, headers=sent, content_type=content_type, status=403
    )

    assert response.json == {"error": "forbidden"}
    assert probe.restarts.reasons == [] and checks == []
    assert any(CLIENT in m and "cross-site request" in m for m in warnings(caplog))


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl and scripts send neither header
        {"Origin": "http://localhost"},  # WebTest's Host is localhost:80
        {"Origin": "http://localhost:80", "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
    ],
    ids=["curl", "same-origin", "same-origin-fetch", "typed-by-the-user"],
)
def test_a_same_origin_or_headerless_post_still_restarts(
    make: MakeMiddleware, headers: dict[str, str]
) -> None:
    middleware, probe = make()

    client(middleware).post(PATH, {"password": PASSWORD}, headers=headers, status=202)
    assert len(probe.restarts) == 1


def test_a_cross_site_get_only_reads_the_status(make: MakeMiddleware) -> None:
    middleware, _ = make()
    app = client(middleware)
    app.authorization = ("Basic", ("", PASSWORD))

    app.get(PATH, headers={"Sec-Fetch-Site": "cross-site"}, status=200)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "localhost.evil.example"])
def test_dns_rebinding_a_loopback_request_naming_another_host_is_403(
    make: MakeMiddleware, caplog: pytest.LogCaptureFixture, host: str
) -> None:
    # evil.example resolved to 127.0.0.1: the browser's request passes allow_from
    # and require_https as loopback, and is same-origin to the browser.
    middleware, probe = make(allow_from="127.0.0.1", require_https=True)
    checks = counting_password_checks(middleware)
    caplog.set_level(logging.INFO, logger="reloadmw")
    origin = {"Origin": f"http://{host}", "Host": host}

    client(middleware, "127.0.0.1").post(PATH, {"password": PASSWORD}, headers=origin, status=403)

    assert probe.restarts.reasons == [] and checks == []
    assert any("allow_hosts" in m and repr(host) in m for m in warnings(caplog))


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8080", "[::1]:8080", "localhost", "app.localhost:80"]
)
def test_by_default_plain_http_may_name_an_ip_address_or_localhost(
    make: MakeMiddleware, host: str
) -> None:
    middleware, _ = make()

    client(middleware, "127.0.0.1").post(
        PATH, {"password": PASSWORD}, headers={"Host": host}, status=202
    )


def test_by_default_https_may_name_any_host(make: MakeMiddleware) -> None:
    middleware, _ = make()
    https = {"wsgi.url_scheme": "https"}

    client(middleware).post(
        PATH, {"password": PASSWORD}, headers={"Host": "app.example.org"}, extra_environ=https,
        status=202,
    )  # fmt: skip


def test_allow_hosts_names_the_hosts_the_endpoint_answers_to(make: MakeMiddleware) -> None:
    middleware, _ = make(allow_hosts=["app.example.org", ".ops.example.org", "10.0.0.5:8080"])
    app = client(middleware)
    app.authorization = ("Basic", ("", PASSWORD))
    allowed = ["app.example.org", "APP.example.org:8443", "ops.example.org", "a.ops.example.org"]
    refused = [
        "127.0.0.1",
        "localhost",
        "example.org",
        "10.0.0.5",
        "10.0.0.5:80",
        "xops.example.org",
    ]

    for host in [*allowed, "10.0.0.5:8080"]:
        app.get(PATH, headers={"Host": host}, status=200)
    for host in refused:
        app.get(PATH, headers={"Host": host}, status=403)
    # https too, once allow_hosts is given
    app.get(PATH, headers={"Host": "evil.example"}, extra_environ={"wsgi.url_scheme": "https"},
            status=403)  # fmt: skip


def test_allow_hosts_also_accepts_an_origin_a_proxy_put_before_another_host(
    make: MakeMiddleware,
) -> None:
    # The proxy passes Host: 127.0.0.1:8000; the browser's page was https://app.example.org.
    middleware, probe = make(allow_hosts=["app.example.org", "127.0.0.1"])
    headers = {"Host": "127.0.0.1:8000", "Origin": "https://app.example.org"}

    client(middleware).post(PATH, {"password": PASSWORD}, headers=headers, status=202)
    headers["Origin"] = "https://evil.example"
    client(middleware).post(PATH, {"password": PASSWORD}, headers=headers, status=403)
    assert len(probe.restarts) == 1


@pytest.mark.parametrize("entry", ["", "http://app.example.org", "app example", "a:b", 5, "/x"])
def test_a_bad_allow_hosts_entry_raises_naming_it(make: MakeMiddleware, entry: object) -> None:
    with pytest.raises(ValueError, match=re.escape(f"allow_hosts entry {entry!r}")):
        make(allow_hosts=[entry])


# -- defect 3: the rate limit, raced and per process ----------------------------------------


def wrong_guess(middleware: ReloadMiddleware, address: str = CLIENT) -> int:
    request = Request.blank(PATH, method="POST", POST={"password": "guess"})
    request.environ["REMOTE_ADDR"] = address
    return int(request.get_response(middleware).status_code)


def lockouts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [m for m in warnings(caplog) if "refusing it (429)" in m]


def test_40_concurrent_wrong_guesses_get_5_password_checks_and_one_log_line(
    make: MakeMiddleware, caplog: pytest.LogCaptureFixture
) -> None:
    middleware, probe = make()
    checks = counting_password_checks(middleware, cost=0.2)  # as the real derivation
    caplog.set_level(logging.INFO, logger="reloadmw")

    with ThreadPoolExecutor(max_workers=40) as pool:
        statuses = Counter(pool.map(lambda _: wrong_guess(middleware), range(40)))

    assert statuses == {401: 5, 429: 35}
    assert len(checks) == 5
    assert len(lockouts(caplog)) == 1
    assert probe.restarts.reasons == []


def test_the_processes_of_an_app_share_one_failure_count(make: MakeMiddleware) -> None:
    first, first_probe = make()  # two processes of one app: the same root and state_dir
    second, second_probe = make()

    assert [wrong_guess(first if n % 2 else second) for n in range(5)] == [401] * 5
    client(first).post(PATH, {"password": PASSWORD}, status=429)
    client(second).post(PATH, {"password": PASSWORD}, status=429)
    assert first_probe.restarts.reasons == second_probe.restarts.reasons == []


def test_the_lockout_is_logged_once_per_window(
    make: MakeMiddleware, caplog: pytest.LogCaptureFixture
) -> None:
    middleware, _ = make()
    now = [1000.0]
    use_limiter(middleware, FailureLimiter(clock=lambda: now[0]))
    caplog.set_level(logging.INFO, logger="reloadmw")

    assert [wrong_guess(middleware) for _ in range(8)] == [401] * 5 + [429] * 3
    now[0] += 61
    assert [wrong_guess(middleware) for _ in range(8)] == [401] * 5 + [429] * 3
    assert len(lockouts(caplog)) == 2


def test_a_right_password_gives_its_reservation_back(make: MakeMiddleware) -> None:
    middleware, probe = make()

    for _ in range(3):
        assert [wrong_guess(middleware) for _ in range(4)] == [401] * 4
        client(middleware).post(PATH, {"password": PASSWORD}, status=202)
    assert len(probe.restarts) == 3


# -- defect 10: a lockout is never forgotten for room ----------------------------------------


@pytest.mark.parametrize("shared", [False, True], ids=["memory", "state-file"])
def test_a_locked_out_address_stays_locked_out_however_many_addresses_follow(
    make: MakeMiddleware, tmp_path: Path, shared: bool
) -> None:
    middleware, probe = make()
    table = (StateDir(str(tmp_path / "state")), "small.failures") if shared else None
    limiter = use_limiter(middleware, FailureLimiter(capacity=64, shared=table))
    attacker = "192.0.2.66"

    assert [wrong_guess(middleware, attacker) for _ in range(5)] == [401] * 5
    for n in range(1000):  # one wrong guess each from 1000 other addresses
        assert wrong_guess(middleware, f"10.0.{n // 256}.{n % 256}") == 401

    client(middleware, attacker).post(PATH, {"password": PASSWORD}, status=429)
    assert probe.restarts.reasons == []
    assert len(limiter) <= 64
