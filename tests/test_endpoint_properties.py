"""Generated requests against the endpoint: never a 500, a restart or a call into the app."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from reloadmw import ReloadMiddleware
from reloadmw.endpoint.ratelimit import FailureLimiter
from tests.helpers import use_limiter
from tests.test_endpoint import HASH, PASSWORD, PATH, Probe

REFUSALS = {401, 403, 405, 413, 415, 429}
RIGHT_FORM = f"password={PASSWORD}".encode()
FORM = "application/x-www-form-urlencoded"


def protected(tmp: Path) -> tuple[ReloadMiddleware, Probe]:
    """The endpoint in front of a probe app, watching no file and never due for a check."""
    probe = Probe()
    middleware = ReloadMiddleware(
        probe.app,
        password=HASH,
        restart=probe.restarts,
        state_dir=str(tmp / "state"),
        root=str(tmp),
        ignore="*",
        interval=3600.0,
    )
    return middleware, probe


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReloadMiddleware, Probe]:
    return protected(tmp_path_factory.mktemp("endpoint"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=300)
# Weighted towards what gets past the early checks, so that deep paths are explored.
methods = st.one_of(
    st.just("POST"),
    st.just("GET"),
    st.sampled_from(["PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "get", "post"]),
    st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12),
)
wrong_passwords = st.text(max_size=40).filter(lambda p: p != PASSWORD)
authorizations = st.one_of(
    st.none(),
    st.none(),
    header_text,
    st.builds(lambda s: "Basic " + s, header_text),
    st.builds(lambda b: "Basic " + b64(b), st.binary(max_size=200)),
    st.builds(
        lambda u, p: "Basic " + b64(f"{u}:{p}".encode()), st.text(max_size=20), wrong_passwords
    ),
    st.builds(lambda n: "Basic " + b64(b"u:" + b"x" * n), st.integers(4000, 12000)),
    st.builds(lambda s: "Bearer " + s, header_text),
)
content_types = st.one_of(
    st.none(),
    st.just(FORM),
    st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=utf-8",
            "multipart/form-data; boundary=x",
            "application/json",
            "text/plain",
            "",
        ]
    ),
    header_text,
)
bodies = st.one_of(
    st.binary(max_size=600),
    st.builds(lambda p: b"password=" + p.encode(), wrong_passwords),
    st.builds(lambda n: b"password=" + b"x" * n, st.integers(8000, 20000)),
    st.just(RIGHT_FORM),  # with a type other than form-urlencoded: must be refused
)
queries = st.one_of(st.just(""), st.just(f"password={PASSWORD}"), header_text)
addresses = st.one_of(
    st.none(),
    st.ip_addresses().map(str),
    st.sampled_from(["127.0.0.1", "::1", "::ffff:10.0.0.1"]),
    header_text,
)
content_lengths = st.one_of(
    st.none(),
    st.just("auto"),
    st.integers(-5, 30000).map(str),
    header_text,
)


@dataclass
class Sent:
    """One generated request to the endpoint."""

    method: str = "GET"
    path: str = PATH
    query: str = ""
    authorization: str | None = None
    content_type: str | None = None
    body: bytes = b""
    content_length: str | None = "auto"  # None: chunked, "auto": the body's length
    address: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def carries_the_right_form(self) -> bool:
        media_type = (self.content_type or "").split(";")[0].strip().lower()
        return self.body == RIGHT_FORM and media_type == FORM

    def environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": self.path,
            "QUERY_STRING": self.query,
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(self.body),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.input_terminated": self.content_length is None,
        }
        for name, value in self.extra.items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        optional = {
            "HTTP_AUTHORIZATION": self.authorization,
            "CONTENT_TYPE": self.content_type,
            "CONTENT_LENGTH": (
                str(len(self.body)) if self.content_length == "auto" else self.content_length
            ),
            "REMOTE_ADDR": self.address,
        }
        environ.update({name: value for name, value in optional.items() if value is not None})
        return environ


def run(middleware: ReloadMiddleware, environ: dict[str, Any]) -> tuple[int, dict[str, str]]:
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append((status, headers))

    iterable = middleware(environ, start_response)
    try:
        b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    status, headers = started[0]
    return int(status.split()[0]), dict(headers)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sent=st.builds(
        Sent,
        method=methods,
        query=queries,
        authorization=authorizations,
        content_type=content_types,
        body=bodies,
        content_length=content_lengths,
        address=addresses,
        extra=st.dictionaries(
            st.sampled_from(["X-Forwarded-For", "Cookie", "Host", "Transfer-Encoding", "Expect"]),
            header_text,
            max_size=3,
        ),
    ),
    fresh_limiter=st.booleans(),
)
def test_generated_requests_without_the_password_are_refused_and_restart_nothing(
    endpoint: tuple[ReloadMiddleware, Probe], sent: Sent, fresh_limiter: bool
) -> None:
    assume(not sent.carries_the_right_form())
    middleware, probe = endpoint
    if fresh_limiter:
        use_limiter(middleware, FailureLimiter())
    environ = sent.environ()

    status, headers = run(middleware, environ)

    assert status in REFUSALS
    if status == 401:
        assert headers["WWW-Authenticate"] == 'Basic realm="reloadmw", charset="UTF-8"'
    if status == 405:
        assert headers["Allow"] == "GET, POST"
    if status == 429:
        assert 1 <= int(headers["Retry-After"]) <= 60
    assert probe.calls == []
    assert probe.restarts.reasons == []
    assert middleware.restarts == 0
    assert not middleware.reload_required()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST"]),
    via_form=st.booleans(),
    user=st.text(st.characters(blacklist_characters=":", blacklist_categories=["Cs"]), max_size=10),
    address=st.one_of(st.ip_addresses().map(str), st.none()),
    query=queries,
)
def test_the_right_password_gives_200_or_202_and_only_post_restarts(
    tmp_path_factory: pytest.TempPathFactory,
    method: str,
    via_form: bool,
    user: str,
    address: str | None,
    query: str,
) -> None:
    middleware, probe = protected(tmp_path_factory.mktemp("right"))
    form = via_form and method == "POST"
    body = f"password={PASSWORD}".replace(" ", "+").encode() if form else b""
    authorization = None if form else "Basic " + b64(f"{user}:{PASSWORD}".encode())
    content_type = FORM if form else None
    sent = Sent(method, PATH, query, authorization, content_type, body, "auto", address)

    status, _ = run(middleware, sent.environ())

    assert status == (202 if method == "POST" else 200)
    assert probe.calls == []
    assert len(probe.restarts) == (1 if method == "POST" else 0)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.text(max_size=40).map(lambda p: "/" + p).filter(lambda p: p != PATH),
    method=methods,
    authorization=authorizations,
)
def test_every_other_path_goes_to_the_app_untouched(
    endpoint: tuple[ReloadMiddleware, Probe], path: str, method: str, authorization: str | None
) -> None:
    middleware, probe = endpoint
    probe.calls.clear()
    sent = Sent(method, path, authorization=authorization, address="10.0.0.1")

    status, _ = run(middleware, sent.environ())

    assert status == 200
    assert probe.calls == [path]
    assert probe.restarts.reasons == []


hosts = st.from_regex(r"[a-z][a-z0-9-]{0,12}(\.[a-z][a-z0-9-]{0,8}){0,3}", fullmatch=True)
ports = st.one_of(st.just(""), st.integers(1, 65535).map(lambda port: f":{port}"))
origins = st.one_of(
    st.just("null"),
    st.builds(lambda s, h, p: f"{s}://{h}{p}", st.sampled_from(["http", "https"]), hosts, ports),
    header_text,
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(origin=origins, via_form=st.booleans())
def test_a_post_with_the_password_from_any_other_origin_is_refused(
    endpoint: tuple[ReloadMiddleware, Probe], origin: str, via_form: bool
) -> None:
    # Request.blank's Host is localhost:80: only that origin is the endpoint's own.
    assume(origin.strip().lower().rstrip("/") not in ("http://localhost", "http://localhost:80"))
    middleware, probe = endpoint
    probe.calls.clear()
    body = RIGHT_FORM.replace(b" ", b"+") if via_form else b""
    authorization = None if via_form else "Basic " + b64(f"ops:{PASSWORD}".encode())
    sent = Sent("POST", PATH, "", authorization, FORM if via_form else None, body, "auto",
                "127.0.0.1", {"Origin": origin, "Host": "localhost:80"})  # fmt: skip

    status, _ = run(middleware, sent.environ())

    assert status == 403
    assert probe.restarts.reasons == [] and probe.calls == []


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(host=hosts, port=ports)
def test_plain_http_naming_any_host_but_localhost_is_refused_with_the_password(
    endpoint: tuple[ReloadMiddleware, Probe], host: str, port: str
) -> None:
    assume(host != "localhost" and not host.endswith(".localhost"))
    middleware, probe = endpoint
    probe.calls.clear()
    authorization = "Basic " + b64(f"ops:{PASSWORD}".encode())
    sent = Sent("POST", PATH, authorization=authorization, address="127.0.0.1",
                extra={"Host": host + port})  # fmt: skip

    status, _ = run(middleware, sent.environ())

    assert status == 403
    assert probe.restarts.reasons == [] and probe.calls == []
