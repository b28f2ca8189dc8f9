"""The endpoint under attack (issue 13), in process: each test failed before its fix."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from tests.test_endpoint import (
    CLIENT,
    PASSWORD,
    MakeMiddleware,
    basic,
    call,
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
