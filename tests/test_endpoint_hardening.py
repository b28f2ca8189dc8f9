"""The endpoint under attack (issue 13), in process: each test failed before its fix."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest

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
