"""Live reload in-process: the poll's answer, the token across processes, errors, who sees them.

A "process" here is a middleware: each takes its start-up baseline from its
own build (the sandbox's ``baseline_at_build``), as a process started then
would.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import webtest

from reloadmw import ReloadMiddleware
from reloadmw.live.cadence import AHEAD, PERIOD_MS, next_poll_ms
from reloadmw.paste import make_filter
from tests.helpers import (
    IGNORE,
    Sandbox,
    counting_checks,
    edit,
    files_dated_after,
    hello_app,
    write,
)

POLL = "/__reloadmw__/live"
NAVIGATE = {"Accept": "text/html"}
LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}
ELSEWHERE = {"REMOTE_ADDR": "192.0.2.7"}
PAGE_APP = """\
import shared
import extra

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html")])
    return [b"<body>" + shared.TEXT.encode() + b"</body>"]
"""


def token_of(page: bytes) -> tuple[int, bool]:
    """The page's token and its "pending" flag, from the script tag."""
    match = re.search(rb'data-token="(\d+)" data-pending="([01])"', page)
    assert match is not None, page
    return int(match[1]), match[2] == b"1"


def poll(client: webtest.TestApp, **environ: str) -> dict[str, Any]:
    answer: dict[str, Any] = client.get(POLL, extra_environ=environ or LOOPBACK).json
    return answer


def is_current(page: bytes, answer: dict[str, Any]) -> bool:
    """What client.js decides: reload when the answer is newer and nothing waits there."""
    return not (answer["version"] > token_of(page)[0] and not answer["pending"])


def app_modules(sandbox: Sandbox) -> Any:
    """``shared.py`` (the one edited), ``extra.py`` and the page app importing both."""
    write(sandbox.root / "shared.py", "TEXT = 'one'\n")
    write(sandbox.root / "extra.py", "X = 1\n")
    write(sandbox.root / "page_app.py", PAGE_APP)
    return importlib.import_module("page_app").application


def process(sandbox: Sandbox, app: Any, *, without_extra: bool = False) -> webtest.TestApp:
    """A "process" serving ``app`` with live reload; ``without_extra``: it never loaded extra.py."""
    ignore = (*IGNORE, "extra.py") if without_extra else IGNORE
    return sandbox.client(sandbox.middleware(app, live_reload=True, ignore=ignore))


def test_the_poll_is_answered_without_calling_the_app(sandbox: Sandbox) -> None:
    calls: list[str] = []

    def app(environ: Any, start_response: Any) -> Any:
        calls.append(environ["PATH_INFO"])
        return hello_app(environ, start_response)

    client = sandbox.client(sandbox.middleware(app, live_reload=True))
    answer = poll(client)
    script = client.get("/__reloadmw__/live.js")
    assert calls == []
    assert set(answer) == {"version", "pending", "next", "restarting", "errors", "failed"}
    assert answer["pending"] is False and answer["errors"] == []
    assert script.content_type == "text/javascript"
    assert b"location.reload()" in script.body


def test_processes_that_loaded_different_modules_agree_the_page_is_current(
    sandbox: Sandbox,
) -> None:
    app = app_modules(sandbox)
    first = process(sandbox, app, without_extra=True)
    second = process(sandbox, app)  # started later, and loaded one module more
    one, two = first.get("/", headers=NAVIGATE).body, second.get("/", headers=NAVIGATE).body

    assert token_of(two)[0] > token_of(one)[0]  # a later start, not newer code
    assert is_current(one, poll(second)) and is_current(two, poll(first))
    assert is_current(one, poll(first)) and is_current(two, poll(second))


def test_after_a_save_old_pages_are_stale_everywhere_and_new_pages_current_everywhere(
    sandbox: Sandbox,
) -> None:
    app = app_modules(sandbox)
    old = process(sandbox, app).get("/", headers=NAVIGATE).body
    edit(sandbox.root / "shared.py", "TEXT = 'two'\n")
    # The processes that replace the old one once it restarted, with other module sets.
    first = process(sandbox, app, without_extra=True)
    second = process(sandbox, app)
    one, two = first.get("/", headers=NAVIGATE).body, second.get("/", headers=NAVIGATE).body

    assert not is_current(old, poll(first)) and not is_current(old, poll(second))
    assert is_current(one, poll(second)) and is_current(two, poll(first))


def test_a_page_rendered_while_a_restart_waits_carries_the_old_token(sandbox: Sandbox) -> None:
    client = process(sandbox, app_modules(sandbox))
    client.app.interval = 3600.0  # no check on the poll: the restart stays waiting
    before = client.get("/", headers=NAVIGATE).body
    edit(sandbox.root / "shared.py", "TEXT = 'two'\n")
    page = client.get("/", headers=NAVIGATE).body  # a page checks first: it knows

    assert token_of(page) == (token_of(before)[0], True)
    assert poll(client)["pending"] is True
    assert sandbox.restarts.reasons == []


def test_a_broken_save_is_in_every_answer_with_file_line_and_message(sandbox: Sandbox) -> None:
    client = process(sandbox, app_modules(sandbox))
    broken = edit(sandbox.root / "shared.py", "TEXT = 'two'\ndef oops(:\n")
    client.get("/")  # the check that finds it (interval=0, quiet=0)

    answer = poll(client)
    assert answer["pending"] is True
    [error] = answer["errors"]
    assert (error["file"], error["line"]) == (str(broken), 2)
    assert "syntax" in error["message"]
    assert sandbox.restarts.reasons == []

    edit(broken, "TEXT = 'fixed'\n")
    client.get("/")
    assert poll(client)["errors"] == []
    assert sandbox.restarts.reasons == [[str(broken)]]


def test_error_text_goes_only_to_allowed_clients(sandbox: Sandbox) -> None:
    client = process(sandbox, app_modules(sandbox))
    edit(sandbox.root / "shared.py", "def oops(:\n")
    client.get("/")

    assert set(poll(client, **ELSEWHERE)) == {"version", "pending", "next"}
    assert poll(client, REMOTE_ADDR="::ffff:127.0.0.1")["errors"]


def test_allow_from_names_who_sees_error_text(sandbox: Sandbox) -> None:
    middleware = sandbox.middleware(hello_app, live_reload=True, allow_from=["192.0.2.0/24"])
    client = sandbox.client(middleware)
    assert "errors" in poll(client, **ELSEWHERE)
    assert "errors" not in poll(client, **LOOPBACK)


def test_an_app_that_fails_to_load_answers_an_html_500_that_carries_the_script(
    sandbox: Sandbox,
) -> None:
    version_file = sandbox.write_app()
    sandbox.write(version_file.name, "VERSION = undefined_name\n")
    client = sandbox.client(sandbox.middleware("webapp:application", live_reload=True))

    page = client.get("/", headers=NAVIGATE, extra_environ=LOOPBACK, status=500)
    hidden = client.get("/", headers=NAVIGATE, extra_environ=ELSEWHERE, status=500)

    assert page.content_type == "text/html"
    assert "NameError: name &#x27;undefined_name&#x27; is not defined" in page.text
    assert "NameError" not in hidden.text and str(version_file) not in hidden.text
    assert "Traceback" not in page.text  # only with debug=True
    assert token_of(page.body) and token_of(hidden.body)
    assert page.headers["Content-Length"] == str(len(page.body))
    assert poll(client)["failed"] == "NameError: name 'undefined_name' is not defined"


def test_a_page_is_out_of_date_where_the_app_now_fails_to_load(sandbox: Sandbox) -> None:
    """A deleted module dates no file later, yet the process after it cannot load the app."""
    app_modules(sandbox)
    working = sandbox.client(sandbox.middleware("page_app:application", live_reload=True))
    page = working.get("/", headers=NAVIGATE).body
    (sandbox.root / "extra.py").unlink()
    for name in ("page_app", "shared", "extra"):
        del sys.modules[name]  # the next process imports afresh
    failed = sandbox.client(sandbox.middleware("page_app:application", live_reload=True))
    failed_page = failed.get("/", headers=NAVIGATE, extra_environ=LOOPBACK, status=500).body

    assert b"No module named" in failed_page
    assert not is_current(page, poll(failed)) and not is_current(page, poll(failed, **ELSEWHERE))
    assert is_current(failed_page, poll(failed))  # the 500 page does not reload itself


OVERRIDING_APP = """\
from flask import Blueprint, Flask, render_template

app = Flask(__name__)
app.register_blueprint(Blueprint("shop", __name__, template_folder="shop_templates"))


@app.route("/")
def index():
    return "<body>" + render_template("shop.html") + "</body>"
"""


@pytest.mark.parametrize("backend", ["inotify", "stat"])
@pytest.mark.parametrize("change", ["deleted", "added"])
def test_an_overriding_template_deleted_or_added_makes_open_pages_out_of_date(
    sandbox: Sandbox, backend: str, change: str
) -> None:
    """The app's own template overrides the blueprint's: Flask takes either in, no restart."""
    sandbox.write("overriding.py", OVERRIDING_APP)
    override = sandbox.root / "templates" / "shop.html"
    if change == "deleted":
        sandbox.write("templates/shop.html", "the override")
    else:
        sandbox.write("templates/other.html", "")  # the folder exists, and is watched
    sandbox.write("shop_templates/shop.html", "the blueprint's")
    first = sandbox.client(sandbox.middleware("overriding:app", live_reload=True, backend=backend))
    page = first.get("/", headers=NAVIGATE).body
    second = sandbox.client(sandbox.middleware("overriding:app", live_reload=True, backend=backend))
    files_dated_after(sandbox.root, token_of(page)[0] * 1000)

    if change == "deleted":
        override.unlink()
    else:
        override.write_text("the override")
    after = first.get("/", headers=NAVIGATE).body

    old_text, new_text = {
        "deleted": (b"the override", b"the blueprint's"),
        "added": (b"the blueprint's", b"the override"),
    }[change]
    assert old_text in page and new_text in after
    assert sandbox.restarts.reasons == []
    assert not is_current(page, poll(first)) and is_current(after, poll(first))
    # Another process that saw the change later agrees: a version, not a moment.
    assert not is_current(page, poll(second)) and is_current(after, poll(second))


def test_live_reload_from_an_ini_file(sandbox: Sandbox, tmp_path: Path) -> None:
    app = make_filter({"here": str(tmp_path)}, live_reload="true", restart="exec")(hello_app)
    assert isinstance(app, ReloadMiddleware)
    try:
        assert webtest.TestApp(app, lint=True).get(POLL).json["pending"] is False
    finally:
        app.close()


def test_under_mod_wsgi_polls_reach_the_daemon_just_before_apaches_pass() -> None:
    start = 1_000_000_000_000  # forked by Apache's parent in one of its passes, once a second
    daemon = {"mod_wsgi.process_group": "app"}
    for since_start in (0.0, 0.3, 0.84, 0.86, 5.5, 7.99):
        now = start + int(since_start * 1e9)
        wait = next_poll_ms(daemon, start, now)
        assert 500 <= wait < 1500
        assert round((since_start + wait / 1000 + AHEAD) % 1.0, 3) in (0.0, 1.0)
    assert next_poll_ms({}, start, start + 123) == PERIOD_MS
    assert next_poll_ms({"mod_wsgi.process_group": ""}, start, start) == PERIOD_MS


def test_a_poll_makes_the_next_request_check_whatever_the_interval(
    sandbox: Sandbox, gate_kind: str
) -> None:
    middleware = sandbox.middleware(hello_app, live_reload=True, interval=3600.0)
    checks = counting_checks(middleware)
    client = sandbox.client(middleware)
    client.get("/")  # the first request checks
    client.get("/")
    assert len(checks) == 1

    poll(client)
    assert len(checks) == 1
    poll(client)  # the poll after a poll checks: one check per poll, at most
    assert len(checks) == 2
    client.get("/")
    client.get("/")
    assert len(checks) == 3


def test_while_a_save_settles_the_next_poll_comes_once_it_has() -> None:
    start = 1_000_000_000_000
    assert next_poll_ms({}, start, start, settling=0.15) == 200
    daemon = {"mod_wsgi.process_group": "app"}
    wait = next_poll_ms(daemon, start, start + int(0.5e9), settling=0.15)
    assert wait == 350  # the first of Apache's beats after it: 0.85 s after the fork
    assert next_poll_ms(daemon, start, start + int(0.8e9), settling=0.15) == 1050


def test_a_poll_while_a_save_settles_says_when_it_has(sandbox: Sandbox) -> None:
    middleware = sandbox.middleware(app_modules(sandbox), live_reload=True, quiet=30.0)
    client = sandbox.client(middleware)  # a long quiet period: the save is still settling
    edit(sandbox.root / "shared.py", "TEXT = 'two'\n")
    client.get("/")  # the check that sees it

    answer = poll(client)
    assert answer["pending"] is True and answer["restarting"] is False
    assert 29_000 < answer["next"] <= 30_050
