"""Live reload in-process: which responses get the script, byte for byte; event streams cut.

WebTest with lint on; every app here is a plain WSGI function whose response a
test names exactly.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Callable

import pytest
import webtest

from reloadmw.live.inject import LIMIT
from tests.helpers import Sandbox

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

PAGE = b"<!doctype html>\n<html><head><title>t</title></head>\n<body><p>hello</p></body></html>\n"
TAG = re.compile(rb'<script src="/__reloadmw__/live\.js\?v=\w+" data-poll="[^"]+"[^>]*></script>')
NAVIGATE = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def serving(
    body: bytes | Iterable[bytes], content_type: str = "text/html; charset=utf-8", **headers: str
) -> WSGIApplication:
    """An app answering 200 with ``body`` (bytes: with its Content-Length) and ``headers``."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        sent = [
            ("Content-Type", content_type),
            *((k.replace("_", "-"), v) for k, v in headers.items()),
        ]
        if isinstance(body, bytes):
            sent.append(("Content-Length", str(len(body))))
        start_response("200 OK", sent)
        return [body] if isinstance(body, bytes) else body

    return app


@pytest.fixture
def live(sandbox: Sandbox) -> Callable[..., webtest.TestApp]:
    """A WebTest client over ``app`` wrapped with ``live_reload=True`` (and ``options``)."""

    def make(app: WSGIApplication, **options: Any) -> webtest.TestApp:
        return sandbox.client(sandbox.middleware(app, live_reload=True, **options))

    return make


def test_an_html_page_gets_the_script_before_body_with_content_length_fixed(live: Any) -> None:
    response = live(serving(PAGE)).get("/", headers=NAVIGATE)
    assert TAG.search(response.body), response.body
    assert response.body.replace(TAG.search(response.body)[0], b"") == PAGE
    assert response.body.index(b"<script src=") < response.body.index(b"</body>")
    assert response.headers["Content-Length"] == str(len(response.body))


def test_without_live_reload_an_html_page_passes_byte_identical(sandbox: Sandbox) -> None:
    client = sandbox.client(sandbox.middleware(serving(PAGE)))
    response = client.get("/", headers=NAVIGATE)
    assert response.body == PAGE
    assert response.headers["Content-Length"] == str(len(PAGE))


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps({"html": "</body>"}).encode(), "application/json"),
        (b"plain </body> text", "text/plain; charset=utf-8"),
        (b"\x89PNG\r\n\x1a\n</body>", "image/png"),
        (b"<p>a fragment without an end</p>", "text/html; charset=utf-8"),
        ("<body>\u00e9</body>".encode("utf-16"), "text/html; charset=utf-16"),
        (b"<body>x</body>", "text/html; charset=no-such-charset"),
    ],
    ids=["json", "text", "png", "no-end-tag", "utf-16", "unknown-charset"],
)
def test_responses_it_cannot_safely_change_pass_byte_identical(
    live: Any, body: bytes, content_type: str
) -> None:
    response = live(serving(body, content_type)).get("/", headers=NAVIGATE)
    assert response.body == body
    assert response.headers["Content-Length"] == str(len(body))


def test_a_compressed_page_passes_untouched(live: Any) -> None:
    body = gzip.compress(PAGE)
    response = live(serving(body, Content_Encoding="gzip")).get("/", headers=NAVIGATE)
    assert response.headers["Content-Length"] == str(len(body))
    assert response.body == PAGE  # as WebTest decodes it: no script


def test_a_head_request_passes_untouched(live: Any) -> None:
    response = live(serving(PAGE)).head("/", headers=NAVIGATE)
    assert response.headers["Content-Length"] == str(len(PAGE))


def test_a_latin_1_page_gets_the_script(live: Any) -> None:
    body = "<body>caf\u00e9</body>".encode("latin-1")
    response = live(serving(body, "text/html; charset=ISO-8859-1")).get("/", headers=NAVIGATE)
    assert TAG.search(response.body)
    assert response.body.startswith("<body>caf\u00e9".encode("latin-1"))


def test_a_page_longer_than_the_buffer_streams_through_untouched(live: Any) -> None:
    chunks = [b"<body>", b"x" * LIMIT, b"y" * 10, b"</body>"]
    response = live(serving(iter(chunks))).get("/", headers=NAVIGATE)
    assert response.body == b"".join(chunks)


def test_a_generator_app_that_starts_late_gets_the_script(live: Any) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        yield b"<body>"
        yield b"late</body>"

    response = live(app).get("/", headers=NAVIGATE)
    assert TAG.search(response.body)
    assert response.body.endswith(b"</body>")


def test_a_page_sent_through_write_passes_untouched(live: Any) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/html")])
        write(b"<body>written")
        return [b"</body>"]

    assert live(app).get("/", headers=NAVIGATE).body == b"<body>written</body>"


def test_the_body_of_the_app_is_closed(live: Any) -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            return iter([PAGE])

        def close(self) -> None:
            closed.append(True)

    live(serving(Body())).get("/", headers=NAVIGATE)
    assert closed == [True]


def test_an_event_stream_ends_at_its_next_chunk_once_a_restart_is_due(
    live: Any, sandbox: Sandbox
) -> None:
    sent: list[int] = []

    def events(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        for n in range(1000):
            sent.append(n)
            if n == 3:  # as when another request claims the restart
                assert sandbox.middlewares[-1]._restarter.claim()
            yield f"data: {n}\n\n".encode()

    body = live(events).get("/events").body
    assert body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert sent == [0, 1, 2, 3]


def test_an_event_stream_passes_whole_while_no_restart_is_due(live: Any) -> None:
    def events(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        yield from (f"data: {n}\n\n".encode() for n in range(5))

    assert live(events).get("/events").body.count(b"data:") == 5
