"""The endpoint under attack (issue 13), in process: each test failed before its fix."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest

from tests.helpers import counting_password_checks
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
