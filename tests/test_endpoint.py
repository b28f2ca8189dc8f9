"""The password-protected ``/__reload__`` endpoint, in process with WebTest."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest
import webtest
from webob import Request

from reloadmw import ReloadMiddleware
from reloadmw.endpoint.credentials import MAX_BODY
from reloadmw.endpoint.marker import GenerationMarker
from reloadmw.endpoint.passwords import hash_password
from reloadmw.endpoint.ratelimit import FailureLimiter
from reloadmw.endpoint.statedir import StateDir, default_state_dir
from tests.helpers import Restarts, counting_password_checks, endpoint_router, use_limiter

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

PASSWORD = "correct horse"
HASH = hash_password(PASSWORD, iterations=1000)
CLIENT = "192.0.2.10"
PATH = "/__reload__"
ROOT = Path(__file__).resolve().parent.parent


class Probe:
    """The wrapped app, recording the paths it was called for, and the restarts."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.restarts = Restarts()

    def app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.calls.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"from the app"]


MakeMiddleware = Callable[..., tuple[ReloadMiddleware, Probe]]


@pytest.fixture
def make(tmp_path: Path) -> MakeMiddleware:
    """A middleware with the endpoint on; processes of one app share ``tmp_path``."""
    return endpoint_maker(tmp_path)


def endpoint_maker(tmp_path: Path) -> MakeMiddleware:
    """What the ``make`` fixture gives, for other test modules."""

    def make(**options: Any) -> tuple[ReloadMiddleware, Probe]:
        probe = Probe()
        options.setdefault("password", HASH)
        options.setdefault("restart", probe.restarts)
        options.setdefault("state_dir", str(tmp_path / "state"))
        # Watch no source file: other work edits the tree while the tests run.
        options.setdefault("ignore", "*")
        middleware = ReloadMiddleware(probe.app, root=str(tmp_path), **options)
        return middleware, probe

    return make


def prepare_state_dir(path: str) -> bool:
    """Create and check a state directory; True if it is shared (sticky)."""
    StateDir(path).check()
    return bool(os.stat(path).st_mode & stat.S_ISVTX)


def client(middleware: ReloadMiddleware, address: str = CLIENT) -> webtest.TestApp:
    return webtest.TestApp(middleware, extra_environ={"REMOTE_ADDR": address})


def basic(password: str, user: str = "ops") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    iterable: Iterable[bytes]


def call(
    middleware: ReloadMiddleware,
    method: str = "POST",
    path: str = PATH,
    headers: dict[str, str] | None = None,
    **environ: Any,
) -> Answer:
    """Call the middleware directly; the caller reads and closes ``iterable``."""
    request = Request.blank(path, method=method, headers=headers or {})
    request.environ["REMOTE_ADDR"] = CLIENT
    request.environ.update(environ)
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append((status, headers))

    iterable = middleware(request.environ, start_response)
    body = b"".join(iterable)
    assert started, "start_response was not called"
    status, sent = started[0]
    return Answer(int(status.split()[0]), dict(sent), body, iterable)


def close(answer: Answer) -> None:
    closer = getattr(answer.iterable, "close", None)
    if closer is not None:
        closer()


# -- without a password --------------------------------------------------------


def test_without_password_the_endpoint_path_goes_to_the_app(tmp_path: Path) -> None:
    probe = Probe()
    middleware = ReloadMiddleware(probe.app, root=str(tmp_path), ignore="*")
    app = client(middleware)

    assert app.post(PATH, {"password": PASSWORD}).text == "from the app"
    assert app.get(PATH).text == "from the app"
    assert probe.calls == [PATH, PATH]
    assert middleware._dispatch is middleware.app


def test_without_password_webob_is_never_imported() -> None:
    code = (
        "import sys\n"
        "from reloadmw import ReloadMiddleware\n"
        "ReloadMiddleware(lambda e, s: [], root='/tmp')\n"
        "assert 'webob' not in sys.modules, 'webob imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


# -- right password ------------------------------------------------------------


def test_post_with_basic_password_answers_202_and_schedules_a_restart(
    make: MakeMiddleware,
) -> None:
    middleware, probe = make()
    app = client(middleware)
    app.authorization = ("Basic", ("anyone", PASSWORD))

    response = app.post(PATH, status=202)

    assert response.json == {
        "restart": "scheduled",
        "pid": os.getpid(),
        "scope": "group",
        "strategy": "Restarts",
    }
    assert response.headers["Cache-Control"] == "no-store"
    assert probe.restarts.reasons == [[f"restart requested through {PATH}"]]
    assert probe.calls == []
    assert middleware.restarts == 1


def test_the_user_name_is_ignored(make: MakeMiddleware) -> None:
    middleware, probe = make()
    app = client(middleware)
    for user in ("", "root", "two words", "ops@example.org"):
        app.authorization = ("Basic", (user, PASSWORD))
        app.post(PATH, status=202)

    assert len(probe.restarts) == 4


def test_post_with_form_password_answers_202(make: MakeMiddleware) -> None:
    middleware, probe = make()

    response = client(middleware).post(PATH, {"password": PASSWORD, "other": "x"}, status=202)

    assert response.json["restart"] == "scheduled"
    assert len(probe.restarts) == 1


def test_restart_fires_only_after_the_response_is_closed(make: MakeMiddleware) -> None:
    middleware, probe = make()

    answer = call(middleware, headers={"Authorization": basic(PASSWORD)})

    assert answer.status == 202
    assert probe.restarts.reasons == []
    close(answer)
    assert len(probe.restarts) == 1
    close(answer)
    assert len(probe.restarts) == 1


def test_get_with_password_returns_status(make: MakeMiddleware) -> None:
    middleware, probe = make()
    app = client(middleware)
    app.authorization = ("Basic", ("", PASSWORD))
    app.post(PATH, status=202)

    status = app.get(PATH, extra_environ={"mod_wsgi.process_group": "app"}, status=200).json

    assert status["pid"] == os.getpid()
    assert status["process_group"] == "app"
    assert status["strategy"] == "Restarts"
    assert status["scope"] == "group"
    assert status["watched_files"] == len(middleware._scanner.monitor)
    assert status["last_check"] == middleware.last_check
    assert status["pending_changes"] == []
    assert status["restarts"] == 1
    assert probe.restarts.reasons == [[f"restart requested through {PATH}"]]


def test_get_status_names_the_automatic_strategy_without_restarting(
    make: MakeMiddleware,
) -> None:
    middleware, _ = make(restart="auto")
    app = client(middleware)
    app.authorization = ("Basic", ("", PASSWORD))

    status = app.get(PATH, extra_environ={"mod_wsgi.process_group": "app"}).json

    assert status["strategy"] == "mod_wsgi-daemon"
    assert status["restarts"] == 0


# -- wrong or missing passwords -------------------------------------------------


def test_get_without_password_is_401_with_basic_challenge(make: MakeMiddleware) -> None:
    middleware, probe = make()

    response = client(middleware).get(PATH, status=401)

    assert response.headers["WWW-Authenticate"] == 'Basic realm="reloadmw", charset="UTF-8"'
    assert probe.calls == [] and probe.restarts.reasons == []


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_wrong_password_is_401_and_restarts_nothing(make: MakeMiddleware, method: str) -> None:
    middleware, probe = make()
    app = client(middleware)
    app.authorization = ("Basic", ("ops", PASSWORD + "!"))

    response = app.request(PATH, method=method, status=401)

    assert response.headers["WWW-Authenticate"] == 'Basic realm="reloadmw", charset="UTF-8"'
    assert probe.calls == [] and probe.restarts.reasons == []
    assert middleware.restarts == 0


def test_the_hash_itself_is_not_a_password(make: MakeMiddleware) -> None:
    middleware, probe = make()
    app = client(middleware)
    app.authorization = ("Basic", ("ops", HASH))

    app.post(PATH, status=401)
    app.post(PATH, {"password": HASH}, status=401)
    assert probe.restarts.reasons == []


def test_password_in_query_string_is_never_accepted(make: MakeMiddleware) -> None:
    middleware, probe = make()
    app = client(middleware)

    app.get(f"{PATH}?password={PASSWORD}", status=401)
    app.post(f"{PATH}?password={PASSWORD}", status=401)
    app.post(f"{PATH}?password={PASSWORD}", {"x": "1"}, status=401)
    assert probe.restarts.reasons == []


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer " + base64.b64encode(f"ops:{PASSWORD}".encode()).decode(),
        "Digest username=ops",
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(f"ops:{PASSWORD}".encode()).decode()[:-2],
        "Basic " + base64.b64encode(b"\xff\xfe:" + PASSWORD.encode()).decode(),
        "Basic " + base64.b64encode(PASSWORD.encode()).decode(),  # no colon
        "Basic " + base64.b64encode(b"ops:" + b"a" * 8000).decode(),  # 10 kB
        basic(PASSWORD) + " trailing",
        "",
    ],
    ids=[
        "bearer",
        "digest",
        "no-token",
        "bad-base64",
        "truncated",
        "not-utf8",
        "no-colon",
        "10kB",
        "trailing",
        "empty",
    ],
)
def test_malformed_authorization_is_401(make: MakeMiddleware, authorization: str) -> None:
    middleware, probe = make()
    app = client(middleware)

    response = app.post(PATH, headers={"Authorization": authorization}, status=401)

    assert response.headers["WWW-Authenticate"] == 'Basic realm="reloadmw", charset="UTF-8"'
    assert probe.restarts.reasons == [] and probe.calls == []


@pytest.mark.parametrize(
    "form",
    [
        b"password=wrong",
        b"password=",
        b"pass=" + PASSWORD.encode(),
        b"password=" + PASSWORD.encode() + b"&password=" + PASSWORD.encode(),
        b"password=%ff%fe",
        b"&".join(b"f%d=1" % n for n in range(100)) + b"&password=" + PASSWORD.encode(),
        b"\xff\xfe",
    ],
    ids=["wrong", "empty", "other-field", "twice", "not-utf8", "too-many-fields", "binary"],
)
def test_bad_form_password_is_401(make: MakeMiddleware, form: bytes) -> None:
    middleware, probe = make()

    client(middleware).post(
        PATH, form, content_type="application/x-www-form-urlencoded", status=401
    )

    assert probe.restarts.reasons == []


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "multipart/form-data; boundary=x", "text/plain", "form"],
)
def test_form_post_with_another_content_type_is_415(
    make: MakeMiddleware, content_type: str
) -> None:
    middleware, probe = make()
    verified = counting_password_checks(middleware)

    client(middleware).post(PATH, f"password={PASSWORD}", content_type=content_type, status=415)

    assert probe.restarts.reasons == [] and verified == []


def test_basic_password_wins_over_the_content_type(make: MakeMiddleware) -> None:
    middleware, probe = make()
    app = client(middleware)
    app.authorization = ("Basic", ("", PASSWORD))

    app.post(PATH, '{"a": 1}', content_type="application/json", status=202)
    assert len(probe.restarts) == 1


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "BREW"])
def test_other_methods_are_405_with_allow_header(make: MakeMiddleware, method: str) -> None:
    middleware, probe = make()

    answer = call(middleware, method=method, headers={"Authorization": basic(PASSWORD)})
    close(answer)

    assert answer.status == 405
    assert answer.headers["Allow"] == "GET, POST"
    assert probe.restarts.reasons == [] and probe.calls == []


class Unreadable(io.RawIOBase):
    """A request body that records every read."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = io.BytesIO(data)
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = self.data.read(size)
        self.taken += len(chunk)
        return chunk


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_body_over_8_kib_by_content_length_is_413_without_reading(
    make: MakeMiddleware, method: str
) -> None:
    middleware, probe = make()
    stream = Unreadable(b"password=x" * 2000)

    answer = call(
        middleware,
        method=method,
        headers={"Authorization": basic(PASSWORD)},
        CONTENT_LENGTH=str(MAX_BODY + 1),
        CONTENT_TYPE="application/x-www-form-urlencoded",
        **{"wsgi.input": stream},
    )
    close(answer)

    assert answer.status == 413
    assert stream.taken == 0
    assert probe.restarts.reasons == []


def test_huge_content_length_is_413(make: MakeMiddleware) -> None:
    middleware, _ = make()

    answer = call(middleware, CONTENT_LENGTH="9" * 5000, **{"wsgi.input": Unreadable()})

    assert answer.status == 413


def test_chunked_body_past_8_kib_is_413_and_reading_stops(make: MakeMiddleware) -> None:
    middleware, probe = make()
    stream = Unreadable(b"password=" + b"x" * 100_000)

    answer = call(
        middleware,
        CONTENT_TYPE="application/x-www-form-urlencoded",
        **{"wsgi.input": stream, "wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    close(answer)

    assert answer.status == 413
    assert stream.taken <= MAX_BODY + 1
    assert probe.restarts.reasons == []


def test_chunked_form_password_within_8_kib_is_accepted(make: MakeMiddleware) -> None:
    middleware, probe = make()
    stream = Unreadable(f"password={PASSWORD}".replace(" ", "+").encode())

    answer = call(
        middleware,
        CONTENT_TYPE="application/x-www-form-urlencoded",
        **{"wsgi.input": stream, "wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    close(answer)

    assert answer.status == 202
    assert len(probe.restarts) == 1


# -- rate limiting -------------------------------------------------------------


def test_five_failures_give_429_with_retry_after_and_no_password_check(
    make: MakeMiddleware,
) -> None:
    middleware, probe = make()
    now = [1000.0]
    use_limiter(middleware, FailureLimiter(clock=lambda: now[0]))
    checks = counting_password_checks(middleware)
    app = client(middleware)

    for _ in range(5):
        app.post(PATH, {"password": "guess"}, status=401)
        now[0] += 1
    blocked = app.post(PATH, {"password": PASSWORD}, status=429)
    app.get(PATH, status=429)

    assert blocked.headers["Retry-After"] == "55"
    assert len(checks) == 5
    assert probe.restarts.reasons == []

    other = client(middleware, "192.0.2.99")
    other.post(PATH, {"password": PASSWORD}, status=202)

    now[0] += 56
    app.post(PATH, {"password": PASSWORD}, status=202)
    assert len(probe.restarts) == 2


def test_right_password_clears_earlier_failures(make: MakeMiddleware) -> None:
    middleware, _ = make()
    app = client(middleware)
    for _ in range(4):
        app.post(PATH, {"password": "guess"}, status=401)
    app.get(PATH, headers={"Authorization": basic(PASSWORD)}, status=200)

    for _ in range(4):
        app.post(PATH, {"password": "guess"}, status=401)
    app.get(PATH, headers={"Authorization": basic(PASSWORD)}, status=200)


def test_ipv6_clients_are_counted_per_64(make: MakeMiddleware) -> None:
    middleware, _ = make()
    for host in range(5):
        client(middleware, f"2001:db8:1:2::{host + 1:x}").get(PATH, status=401)

    client(middleware, "2001:db8:1:2:ffff::1").get(PATH, status=429)
    client(middleware, "2001:db8:1:3::1").get(PATH, status=401)


def test_failure_counters_stay_bounded_when_addresses_rotate(make: MakeMiddleware) -> None:
    middleware, _ = make()
    limiter = use_limiter(middleware, FailureLimiter(capacity=50))

    for n in range(300):
        client(middleware, f"10.0.{n // 256}.{n % 256}").get(PATH, status=401)

    assert len(limiter) == 50


def test_limiter_forgets_failures_after_the_window() -> None:
    now = [0.0]
    limiter = FailureLimiter(limit=2, window=10.0, clock=lambda: now[0])

    assert limiter.reserve("a") == (None, False)
    assert limiter.reserve("a") == (None, True)  # the attempt that locks "a" out if it fails
    assert limiter.retry_after("a") == 10
    now[0] = 9.5
    assert limiter.retry_after("a") == 1
    now[0] = 10.0
    assert limiter.retry_after("a") is None
    assert len(limiter) == 0


# -- who may ask ---------------------------------------------------------------


def test_client_outside_allow_from_is_403_before_any_password_check(
    make: MakeMiddleware,
) -> None:
    middleware, probe = make(allow_from=["10.0.0.0/8", "::1"])
    checks = counting_password_checks(middleware)

    for _ in range(8):
        client(middleware, CLIENT).post(PATH, {"password": PASSWORD}, status=403)
    webtest.TestApp(middleware).post(PATH, {"password": PASSWORD}, status=403)  # no address

    assert checks == [] and probe.restarts.reasons == []
    client(middleware, "10.1.2.3").post(PATH, {"password": PASSWORD}, status=202)
    client(middleware, "::ffff:10.1.2.3").post(PATH, {"password": PASSWORD}, status=202)
    client(middleware, "::1").post(PATH, {"password": PASSWORD}, status=202)
    assert len(probe.restarts) == 3


def test_allow_from_takes_a_single_address(make: MakeMiddleware) -> None:
    middleware, _ = make(allow_from="127.0.0.1")

    client(middleware, "127.0.0.1").get(PATH, status=401)
    client(middleware, "127.0.0.2").get(PATH, status=403)


def test_require_https_refuses_plain_http_except_from_loopback(make: MakeMiddleware) -> None:
    middleware, probe = make(require_https=True)
    checks = counting_password_checks(middleware)
    form = {"password": PASSWORD}

    client(middleware).post(PATH, form, status=403)
    assert checks == []
    client(middleware).post(PATH, form, extra_environ={"wsgi.url_scheme": "https"}, status=202)
    client(middleware, "127.0.0.1").post(PATH, form, status=202)
    client(middleware, "::1").post(PATH, form, status=202)
    assert len(probe.restarts) == 3


# -- the path ------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"{PATH}/x", f"{PATH}/", "/__RELOAD__", "/x/__reload__"])
def test_only_the_exact_path_is_the_endpoint(make: MakeMiddleware, path: str) -> None:
    middleware, probe = make()

    client(middleware).post(path, {"password": PASSWORD}, status=200)

    assert probe.calls == [path]
    assert probe.restarts.reasons == []


def test_the_endpoint_sits_under_the_mount_point(make: MakeMiddleware) -> None:
    middleware, probe = make()
    app = client(middleware)

    app.post(PATH, {"password": PASSWORD}, extra_environ={"SCRIPT_NAME": "/shop"}, status=202)
    assert probe.calls == []


def test_a_custom_endpoint_path_is_used(make: MakeMiddleware) -> None:
    middleware, probe = make(endpoint="/ops/restart")
    app = client(middleware)

    app.post(PATH, {"password": PASSWORD}, status=200)
    app.post("/ops/restart", {"password": PASSWORD}, status=202)
    assert probe.calls == [PATH]


# -- logging -------------------------------------------------------------------


def test_failures_are_logged_at_warning_with_address_and_reason(
    make: MakeMiddleware, caplog: pytest.LogCaptureFixture
) -> None:
    middleware, _ = make()
    caplog.set_level(logging.INFO, logger="reloadmw")

    client(middleware).post(PATH, {"password": "guess"}, status=401)
    client(middleware).put(PATH, status=405)

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(CLIENT in m and "wrong password" in m for m in warnings)
    assert any(CLIENT in m and "method not allowed" in m for m in warnings)


def test_logs_never_contain_the_password_the_hash_or_the_authorization_header(
    make: MakeMiddleware, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    plain, _ = make(password=PASSWORD, state_dir=None, scope="process")
    middleware, _ = make()
    right, wrong = basic(PASSWORD), basic("guess-" + PASSWORD)
    for target in (plain, middleware):
        app = client(target)
        for headers in ({"Authorization": right}, {"Authorization": wrong}):
            app.get(PATH, headers=headers, expect_errors=True)
            app.post(PATH, headers=headers, expect_errors=True)
        app.post(PATH, {"password": PASSWORD}, expect_errors=True)
        app.post(PATH, {"password": "guess-" + PASSWORD}, expect_errors=True)
        app.get(f"{PATH}?password={PASSWORD}", expect_errors=True)
        for _ in range(6):
            app.post(PATH, headers={"Authorization": wrong}, expect_errors=True)

    text = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert "refused" in text
    for secret in (PASSWORD, HASH, *HASH.split("$")[2:], right[6:], wrong[6:], "guess-"):
        assert secret not in text, secret


# -- options -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"endpoint": ""}, "endpoint=''"),
        ({"endpoint": "__reload__"}, "endpoint='__reload__'"),
        ({"endpoint": "/"}, "endpoint='/'"),
        ({"endpoint": "/a b"}, "endpoint='/a b'"),
        ({"endpoint": "/x?y=1"}, "endpoint='/x?y=1'"),
        ({"endpoint": 5}, "endpoint=5"),
        ({"allow_from": []}, "allow_from=[]"),
        ({"allow_from": ["nope"]}, "allow_from entry 'nope'"),
        ({"allow_from": ["10.0.0.0/33"]}, "allow_from entry '10.0.0.0/33'"),
        ({"allow_from": [5]}, "allow_from entry 5"),
        ({"require_https": "yes"}, "require_https='yes'"),
        ({"require_https": 1}, "require_https=1"),
        ({"scope": "all"}, "scope='all'"),
        ({"scope": None}, "scope=None"),
        ({"state_dir": 5}, "state_dir=5"),
        ({"state_dir": ""}, "state_dir='' is empty"),
    ],
)
@pytest.mark.parametrize("password", [HASH, None])
def test_bad_options_raise_value_error_naming_option_and_value(
    make: MakeMiddleware, options: dict[str, Any], named: str, password: str | None
) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        make(password=password, **options)


@pytest.mark.parametrize("password", ["", "  "])
def test_empty_password_is_refused(make: MakeMiddleware, password: str) -> None:
    with pytest.raises(ValueError, match="password is empty"):
        make(password=password)


def test_plaintext_password_works_with_one_startup_warning(
    make: MakeMiddleware, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="reloadmw")
    middleware, probe = make(password="plain words")
    app = client(middleware)
    app.authorization = ("Basic", ("", "plain words"))
    app.get(PATH, status=200)
    app.post(PATH, status=202)

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "plain text" in warnings[0] and "hash-password" in warnings[0]
    assert len(probe.restarts) == 1


# -- restarting the group --------------------------------------------------------


def test_group_post_restarts_every_other_process_after_its_next_request(
    make: MakeMiddleware,
) -> None:
    first, first_probe = make()
    second, second_probe = make()

    client(first).post(PATH, {"password": PASSWORD}, status=202)
    assert len(first_probe.restarts) == 1

    answer = call(second, method="GET", path="/page")
    assert answer.body == b"from the app"
    assert second_probe.restarts.reasons == []
    close(answer)
    assert second_probe.restarts.reasons == [[f"group restart requested through {PATH}"]]

    client(second).get("/page")
    client(first).get("/page")
    assert len(second_probe.restarts) == 1
    assert len(first_probe.restarts) == 1


def test_group_post_makes_reload_required_true_in_every_other_process(
    make: MakeMiddleware,
) -> None:
    first, _ = make()
    second, second_probe = make()
    assert not second.reload_required()

    client(first).post(PATH, {"password": PASSWORD}, status=202)

    assert second.reload_required()
    assert second.reload_required()
    assert second.restarts == 1
    client(second).get("/page")
    assert second_probe.restarts.reasons == []  # mod_wsgi restarts it; the request path does not


def test_after_a_post_reload_required_restarts_the_same_process_once(
    make: MakeMiddleware,
) -> None:
    middleware, probe = make()
    assert not middleware.reload_required()

    answer = call(middleware, headers={"Authorization": basic(PASSWORD)})
    assert answer.status == 202
    assert middleware.reload_required()  # a request arriving before the 202 is closed
    close(answer)

    assert probe.restarts.reasons == []  # mod_wsgi's own SIGINT is the only restart
    assert middleware.restarts == 1


def test_a_process_started_after_the_marker_is_not_restarted(make: MakeMiddleware) -> None:
    first, _ = make()
    client(first).post(PATH, {"password": PASSWORD}, status=202)
    marker = endpoint_router(first).generation
    assert marker is not None

    later = GenerationMarker(marker.state, f"{first.root}\0{PATH}", start_ns=2**62)
    assert not later.claim()


def test_a_marker_bumped_while_the_process_was_starting_restarts_it(
    make: MakeMiddleware,
) -> None:
    first, _ = make()
    client(first).post(PATH, {"password": PASSWORD}, status=202)
    marker = endpoint_router(first).generation
    assert marker is not None

    starting = GenerationMarker(marker.state, f"{first.root}\0{PATH}", start_ns=0)
    assert starting.claim()
    assert not starting.claim()


def test_process_scope_restarts_only_the_process_that_got_the_post(
    make: MakeMiddleware,
) -> None:
    first, first_probe = make(scope="process")
    second, second_probe = make(scope="process")

    client(first).post(PATH, {"password": PASSWORD}, status=202)

    assert not second.reload_required()
    client(second).get("/page")
    assert len(first_probe.restarts) == 1
    assert second_probe.restarts.reasons == []
    assert endpoint_router(first).generation is None


def test_other_apps_do_not_share_the_marker(make: MakeMiddleware, tmp_path: Path) -> None:
    first, _ = make()
    probe = Probe()
    other = ReloadMiddleware(
        probe.app,
        ignore="*",
        root=str(tmp_path / "elsewhere"),
        password=HASH,
        restart=probe.restarts,
        state_dir=str(tmp_path / "state"),
    )

    client(first).post(PATH, {"password": PASSWORD}, status=202)

    assert not other.reload_required()


def test_the_marker_costs_one_stat_per_request(
    make: MakeMiddleware, monkeypatch: pytest.MonkeyPatch
) -> None:
    middleware, _ = make(interval=60.0)
    call(middleware, method="GET", path="/warm-up")  # the first request runs the scan
    marker = endpoint_router(middleware).generation
    assert marker is not None
    stats: list[object] = []
    real_stat = os.stat

    def counting(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        stats.append(path)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting)
    answer = call(middleware, method="GET", path="/page")
    monkeypatch.undo()

    assert stats == [marker.path]
    assert answer.status == 200


def test_a_marker_that_cannot_be_written_gives_503_and_no_restart(
    make: MakeMiddleware, monkeypatch: pytest.MonkeyPatch
) -> None:
    middleware, probe = make()

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    response = client(middleware).post(PATH, {"password": PASSWORD}, status=503)
    monkeypatch.undo()

    assert "marker" in response.json["error"]
    assert probe.restarts.reasons == []


# -- the state directory -------------------------------------------------------


def test_default_state_dir_is_private_to_the_user_under_tempdir(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tempfile

    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)  # preferred when set

    path = default_state_dir()
    assert os.path.dirname(path) == tempfile.gettempdir()
    assert path.endswith(f"reloadmw-{os.geteuid()}")


def test_state_dir_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "state"

    assert prepare_state_dir(str(path)) is False
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_state_dir_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")

    with pytest.raises(ValueError, match="symlink"):
        prepare_state_dir(str(tmp_path / "link"))


def test_state_dir_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root to give a directory away (the suite runs as root)")
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    os.chown(path, 65534, 65534)

    with pytest.raises(ValueError, match="owned by uid 65534"):
        prepare_state_dir(str(path))


def test_state_dir_writable_by_others_is_refused_unless_sticky(tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.mkdir()
    path.chmod(0o777)
    with pytest.raises(ValueError, match="writable by other users"):
        prepare_state_dir(str(path))

    path.chmod(0o1777)
    assert prepare_state_dir(str(path)) is True


def test_state_dir_that_is_a_file_or_missing_parent_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="not a directory"):
        prepare_state_dir(str(tmp_path / "file"))
    with pytest.raises(ValueError, match="cannot be used"):
        prepare_state_dir(str(tmp_path / "missing" / "state"))


def test_in_a_shared_sticky_dir_only_our_own_markers_count(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root to plant another user's file (the suite runs as root)")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    marker = GenerationMarker(StateDir(str(shared)), "app", start_ns=0)
    planted = Path(marker.path)
    planted.write_text("attacker")
    os.chown(planted, 65534, 65534)

    assert not marker.claim()
    os.utime(planted, ns=(1, 1))
    assert not marker.claim()


def test_marker_symlink_is_not_followed(tmp_path: Path) -> None:
    marker = GenerationMarker(StateDir(str(tmp_path / "state")), "app", start_ns=2**62)
    target = tmp_path / "target"
    target.write_text("x")
    Path(marker.path).symlink_to(target)
    marker.claim()  # takes the link's own signature
    os.utime(target, ns=(5, 5))

    assert not marker.claim()
    marker.bump()
    assert not Path(marker.path).is_symlink()
    assert target.read_text() == "x"


def test_marker_moves_on_every_bump_even_within_one_clock_tick(tmp_path: Path) -> None:
    bumper = GenerationMarker(StateDir(str(tmp_path / "state")), "app", start_ns=0)
    watcher = GenerationMarker(StateDir(str(tmp_path / "state")), "app", start_ns=2**62)

    for _ in range(50):
        bumper.bump()
        assert watcher.claim()
        assert not watcher.claim()


def test_endpoint_json_bodies_are_json(make: MakeMiddleware) -> None:
    middleware, _ = make()
    answer = call(middleware, method="GET")
    close(answer)

    assert answer.headers["Content-Type"].startswith("application/json")
    assert json.loads(answer.body) == {"error": "a valid password is required"}


@pytest.fixture(autouse=True)
def _no_stray_state(tmp_path: Path) -> Iterator[None]:
    yield
    state = tmp_path / "state"
    if state.is_dir():
        assert not [p for p in os.listdir(state) if p.startswith(".tmp-")]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json"])
def test_post_without_a_body_or_password_is_401_whatever_the_type(
    make: MakeMiddleware, content_type: str | None
) -> None:
    middleware, probe = make()
    environ = {"CONTENT_TYPE": content_type} if content_type else {}

    answer = call(middleware, CONTENT_LENGTH="0", **environ)

    assert answer.status == 401
    assert probe.restarts.reasons == []
