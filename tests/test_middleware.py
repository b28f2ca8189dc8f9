"""ReloadMiddleware in-process: throttling, one scanner, restart after the response, options.

Apps run under WebTest with lint on.  Files are real temporary files whose
mtimes the tests set with ``os.utime``; restarts go to a recording callable
unless a test is about another strategy (see ``test_strategies.py``).
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import runpy
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest
import webtest

from reloadmw import ReloadMiddleware
from tests.helpers import (
    IGNORE,
    Clock,
    Restarts,
    Sandbox,
    SpyMonitor,
    edit,
    hello_app,
    wait_until,
    write,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

MakeMiddleware = Callable[..., ReloadMiddleware]


@pytest.fixture
def project(sandbox: Sandbox) -> Path:
    """An app directory whose files were all saved long before the process started."""
    write(sandbox.root / "views.py", "A = 1\n")
    write(sandbox.root / "config.ini", "[app]\ndebug = true\n")
    write(sandbox.root / "templates" / "index.html", "<p>hello</p>")
    return sandbox.root


@pytest.fixture
def restarts(sandbox: Sandbox) -> Restarts:
    return sandbox.restarts


@pytest.fixture
def make_mw(sandbox: Sandbox, project: Path, spies: list[SpyMonitor]) -> MakeMiddleware:
    """Build a middleware over ``project`` that restarts through ``restarts``.

    The start-up baseline is the middleware's build, so that modules left
    behind by other tests do not count as changed;
    ``test_file_saved_after_process_start_...`` uses the real one.
    """

    def make(app: Any = hello_app, **options: Any) -> ReloadMiddleware:
        options.setdefault("track", ("views.py", "config.ini", "templates/"))
        return sandbox.middleware(app, **options)

    return make


@pytest.fixture
def clock(sandbox: Sandbox, gate_kind: str, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The middlewares' clock moves only on demand; each test runs through both gates."""
    return Clock(monkeypatch, lambda: sandbox.middlewares)


def get(mw: ReloadMiddleware, **kwargs: Any) -> webtest.TestResponse:
    return webtest.TestApp(mw, lint=True).get("/", **kwargs)


def streaming_app(chunks: int, seen: list[int], restarts: Restarts) -> Any:
    """An app streaming ``chunks`` chunks; records the restart count at each one."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        for i in range(chunks):
            seen.append(len(restarts))
            yield b"chunk %d\n" % i

    return app


# -- throttling -----------------------------------------------------------------------


def test_fast_path_does_not_scan_until_the_interval_has_elapsed(
    make_mw: MakeMiddleware, spies: list[SpyMonitor], clock: Clock
) -> None:
    mw = make_mw(interval=10)
    spy = spies[-1]
    get(mw)  # the first request checks straight away
    after_first = spy.polls
    for _ in range(50):
        get(mw)
    clock.advance(9.9)
    get(mw)
    assert spy.polls == after_first
    clock.advance(0.1)
    get(mw)
    assert spy.polls == after_first + 1
    get(mw)
    assert spy.polls == after_first + 1


def test_interval_zero_checks_on_every_request(
    make_mw: MakeMiddleware, spies: list[SpyMonitor]
) -> None:
    mw = make_mw(interval=0)
    before = spies[-1].polls
    for _ in range(20):
        get(mw)
    assert spies[-1].polls == before + 20


def test_edit_is_seen_on_the_first_request_after_the_interval(
    make_mw: MakeMiddleware, project: Path, restarts: Restarts, clock: Clock
) -> None:
    mw = make_mw(interval=5)
    get(mw)
    edit(project / "config.ini", "[app]\ndebug = false\n")
    get(mw)
    assert len(restarts) == 0
    clock.advance(5)
    get(mw)
    assert restarts.reasons == [[str(project / "config.ini")]]


def test_only_one_thread_scans_and_the_others_do_not_wait(
    make_mw: MakeMiddleware, spies: list[SpyMonitor]
) -> None:
    mw = make_mw(interval=0)
    spy = spies[-1]
    statuses: list[int] = []
    spy.hold = True
    polls_before = spy.polls
    scanner = threading.Thread(target=lambda: statuses.append(get(mw).status_int))
    scanner.start()
    try:
        assert spy.entered.wait(5), "the first request never started scanning"
        others = [
            threading.Thread(target=lambda: statuses.append(get(mw).status_int)) for _ in range(6)
        ]
        for thread in others:
            thread.start()
        for thread in others:
            thread.join(5)
        assert not [t for t in others if t.is_alive()], "requests waited for the scan"
        assert statuses == [200] * 6
        assert spy.polls == polls_before + 1, "another thread scanned during the scan"
    finally:
        spy.release.set()
        scanner.join(5)
    assert statuses == [200] * 7


# -- restart after the response ----------------------------------------------------------


def test_restart_waits_for_response_close(
    make_mw: MakeMiddleware, project: Path, restarts: Restarts
) -> None:
    seen: list[int] = []
    app = validator(make_mw(streaming_app(3, seen, restarts)))
    edit(project / "views.py", "A = 2\n")
    environ: dict[str, Any] = {"QUERY_STRING": ""}
    setup_testing_defaults(environ)
    result = app(environ, lambda status, headers, exc_info=None: lambda data: None)
    body = b"".join(result)
    assert body == b"chunk 0\nchunk 1\nchunk 2\n"
    assert len(restarts) == 0, "restarted before the server closed the response"
    result.close()  # type: ignore[attr-defined]
    assert restarts.reasons == [[str(project / "views.py")]]
    result.close()  # type: ignore[attr-defined]
    assert len(restarts) == 1


def test_request_that_sees_the_change_gets_its_full_response_before_the_restart(
    make_mw: MakeMiddleware, project: Path, restarts: Restarts
) -> None:
    seen: list[int] = []
    mw = make_mw(streaming_app(5, seen, restarts))
    edit(project / "views.py", "A = 2\n")
    response = get(mw)
    assert response.text.count("chunk") == 5
    assert seen == [0] * 5
    assert len(restarts) == 1


def test_restart_fires_once_per_change_across_many_requests(
    make_mw: MakeMiddleware, project: Path, restarts: Restarts
) -> None:
    mw = make_mw()
    edit(project / "views.py", "A = 2\n")
    for _ in range(10):
        get(mw)
    assert restarts.reasons == [[str(project / "views.py")]]
    edit(project / "config.ini", "[app]\n")
    for _ in range(10):
        get(mw)
    assert restarts.reasons == [[str(project / "views.py")], [str(project / "config.ini")]]


def test_restart_fires_after_the_app_raises(
    make_mw: MakeMiddleware, project: Path, restarts: Restarts
) -> None:
    def failing(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        raise RuntimeError("the app failed")

    mw = make_mw(failing)
    edit(project / "views.py", "A = 2\n")
    with pytest.raises(RuntimeError, match="the app failed"):
        get(mw)
    assert restarts.reasons == [[str(project / "views.py")]]


def test_failing_restart_callable_is_logged_and_the_response_is_unharmed(
    make_mw: MakeMiddleware, project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failing = Restarts(fail=True)
    mw = make_mw(restart=failing)
    edit(project / "views.py", "A = 2\n")
    response = get(mw)
    assert (response.status_int, response.text) == (200, "hello")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, caplog.text
    assert errors[0].exc_info is not None
    assert "restart" in errors[0].getMessage()
    assert f"pid={os.getpid()}" in errors[0].getMessage()
    edit(project / "config.ini", "[app]\n")
    get(mw)
    assert len(failing) == 2, "a later change no longer restarted"


# -- reload_required ---------------------------------------------------------------------


def test_reload_required_is_false_when_nothing_changed(
    make_mw: MakeMiddleware, clock: Clock
) -> None:
    mw = make_mw(interval=1)
    for _ in range(3):
        assert mw.reload_required("/app.wsgi") is False
        clock.advance(1)


def test_reload_required_turns_true_after_an_edit_once_the_interval_passed(
    make_mw: MakeMiddleware, project: Path, clock: Clock, restarts: Restarts
) -> None:
    mw = make_mw(interval=1)
    assert mw.reload_required("/app.wsgi") is False
    edit(project / "views.py", "A = 2\n")
    assert mw.reload_required("/app.wsgi") is False
    clock.advance(1)
    assert mw.reload_required("/app.wsgi") is True
    assert mw.reload_required("/app.wsgi") is True
    clock.advance(1)
    assert mw.reload_required("/app.wsgi") is True
    get(mw)
    assert len(restarts) == 0, "the request path restarted for a change mod_wsgi handles"


# -- what is watched, and the public check()/track() ------------------------------------------


def test_check_returns_the_changed_paths(make_mw: MakeMiddleware, project: Path) -> None:
    mw = make_mw()
    assert mw.check() == []
    edit(project / "views.py", "A = 2\n")
    edit(project / "templates" / "index.html", "<p>bye</p>")
    assert sorted(mw.check()) == sorted(
        [str(project / "views.py"), str(project / "templates" / "index.html")]
    )
    assert mw.check() == []


def test_change_found_by_check_restarts_on_the_next_request(
    make_mw: MakeMiddleware, project: Path, restarts: Restarts
) -> None:
    mw = make_mw()
    views = edit(project / "views.py", "A = 2\n")
    assert mw.check() == [str(views)]
    get(mw)
    assert restarts.reasons == [[str(views)]]


def test_track_adds_a_file_at_runtime(make_mw: MakeMiddleware, project: Path) -> None:
    extra = write(project / "extra.ini", "a = 1\n")
    mw = make_mw()
    edit(extra, "a = 2\n")
    assert mw.check() == []
    mw.track("extra.ini")
    mw.check()
    edit(extra, "a = 3\n")
    assert mw.check() == [str(extra)]


def test_track_adds_a_directory_at_runtime(make_mw: MakeMiddleware, project: Path) -> None:
    mw = make_mw()
    mw.track("locale/")
    new = write(project / "locale" / "fr" / "messages.po", "msgid")
    assert mw.check() == [str(new)]


def test_relative_track_paths_start_from_the_wsgi_scripts_directory(
    sandbox: Sandbox,
    restarts: Restarts,
    spies: list[SpyMonitor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = write(sandbox.root / "site" / "config.ini", "a = 1\n")
    script = write(
        sandbox.root / "site" / "app.wsgi",
        "from reloadmw import ReloadMiddleware\n"
        "from tests.helpers import IGNORE, hello_app\n"
        "application = ReloadMiddleware(\n"
        "    hello_app, interval=0, track='config.ini', ignore=IGNORE, restart=RESTART\n"
        ")\n",
    )
    monkeypatch.chdir(sandbox.root)  # not where the script is
    application = runpy.run_path(str(script), {"RESTART": restarts})["application"]
    edit(config, "a = 2\n")
    assert application.check() == [str(config)]


def test_failing_check_is_logged_and_the_request_is_still_served(
    make_mw: MakeMiddleware,
    spies: list[SpyMonitor],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mw = make_mw()

    def broken_poll() -> dict[str, float]:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(spies[-1], "poll", broken_poll)
    response = get(mw)
    assert (response.status_int, response.text) == (200, "hello")
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert f"pid={os.getpid()}" in error.getMessage()
    assert error.exc_info is not None


def test_modules_imported_after_start_are_watched_from_the_next_check(
    make_mw: MakeMiddleware, project: Path
) -> None:
    mw = make_mw()
    source = write(project / "rmw_late_import.py", "A = 1\n")
    importlib.import_module("rmw_late_import")
    assert mw.check() == []
    edit(source, "A = 2\n")
    assert mw.check() == [str(source)]


def test_file_saved_after_process_start_restarts_on_the_first_request(
    tmp_path: Path, spies: list[SpyMonitor]
) -> None:
    # The real baseline (no sandbox): this process started before the test saved the file.
    views = edit(tmp_path / "views.py", "A = 2\n")
    restarts = Restarts()
    mw = ReloadMiddleware(
        hello_app, interval=0, quiet=0, track=str(views), ignore=IGNORE, restart=restarts
    )
    get(mw)
    assert len(restarts) == 1
    assert str(views) in restarts.reasons[0]


def test_imports_in_another_thread_during_scans_cause_no_error(
    make_mw: MakeMiddleware, project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    names = [f"rmw_bulk_{i}" for i in range(500)]
    for name in names:
        write(project / f"{name}.py", "A = 1\n")
    mw = make_mw()
    errors: list[BaseException] = []

    def import_all() -> None:
        try:
            for name in names:
                importlib.import_module(name)
        except BaseException as error:  # reported below
            errors.append(error)

    importer = threading.Thread(target=import_all)
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, also in the middle of a scan
    try:
        importer.start()
        while importer.is_alive():
            mw.check()
            get(mw)
        importer.join()
    finally:
        sys.setswitchinterval(switch_interval)
    assert errors == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    last = edit(project / f"{names[-1]}.py", "A = 2\n")
    assert mw.check() == [str(last)]


# -- quiet period ----------------------------------------------------------------------------
# A change is dated by its file's ctime, which a test cannot set back: these run in real time.


def restart_time(mw: ReloadMiddleware, restarts: Restarts) -> float:
    """Send requests until a restart fires; return the wall time at which it fired."""
    wait_until(lambda: get(mw) and restarts.times, 5, lambda: "the restart never came", 0.01)
    return restarts.times[0]


def test_quiet_period_holds_a_change_until_no_file_changed_for_quiet_seconds(
    make_mw: MakeMiddleware, project: Path, restarts: Restarts
) -> None:
    mw = make_mw(quiet=0.4)
    views = edit(project / "views.py", "A = 2\n")
    get(mw)
    assert len(restarts) == 0
    assert restart_time(mw, restarts) - os.stat(views).st_ctime >= 0.4
    assert restarts.reasons == [[str(views)]]


def test_a_further_change_during_the_quiet_period_holds_the_restart(
    make_mw: MakeMiddleware, project: Path, restarts: Restarts
) -> None:
    mw = make_mw(quiet=0.4)
    views = edit(project / "views.py", "A = 2\n")
    get(mw)
    time.sleep(0.25)
    config = edit(project / "config.ini", "[app]\n")
    get(mw)
    assert len(restarts) == 0
    assert restart_time(mw, restarts) - os.stat(config).st_ctime >= 0.4
    assert sorted(restarts.reasons[0]) == sorted([str(views), str(config)])


# -- precheck --------------------------------------------------------------------------------


def test_syntax_error_does_not_restart_and_is_logged_once_until_fixed(
    make_mw: MakeMiddleware,
    project: Path,
    restarts: Restarts,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mw = make_mw()
    views = edit(project / "views.py", "A = 1\n\ndef broken(:\n    pass\n")
    for _ in range(5):
        assert get(mw).text == "hello"
    assert len(restarts) == 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text
    assert f"{views}:3" in warnings[0].getMessage()
    assert f"pid={os.getpid()}" in warnings[0].getMessage()
    edit(views, "A = 1\n\ndef fixed():\n    pass\n")
    get(mw)
    assert restarts.reasons == [[str(views)]]


def test_without_precheck_a_syntax_error_restarts(
    make_mw: MakeMiddleware, project: Path, restarts: Restarts
) -> None:
    mw = make_mw(precheck=False)
    edit(project / "views.py", "def broken(:\n")
    get(mw)
    assert restarts.reasons == [[str(project / "views.py")]]


# -- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"interval": "soon"}, "interval='soon'"),
        ({"interval": -1}, "interval=-1"),
        ({"interval": float("nan")}, "interval=nan"),
        ({"interval": float("inf")}, "interval=inf"),
        ({"interval": True}, "interval=True"),
        ({"interval": None}, "interval=None"),
        ({"quiet": "long"}, "quiet='long'"),
        ({"quiet": -0.5}, "quiet=-0.5"),
        ({"restart": "bogus"}, "restart='bogus'"),
        ({"restart": 5}, "restart=5"),
        ({"backend": "bogus"}, "backend='bogus'"),
        ({"track": [1]}, "track entry 1"),
        ({"track": [""]}, "track entry ''"),
        ({"track": 5}, "track=5"),
        ({"ignore": [None]}, "ignore entry None"),
        ({"ignore": 5}, "ignore=5"),
    ],
)
def test_bad_option_raises_value_error_naming_option_and_value(
    make_mw: MakeMiddleware, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        make_mw(**options)


# -- logging -----------------------------------------------------------------------------------


def watched_count(caplog: pytest.LogCaptureFixture) -> int:
    [record] = [r for r in caplog.records if r.levelno == logging.INFO]
    found = re.search(r"watching (\d+) files", record.getMessage())
    assert found, record.getMessage()
    return int(found.group(1))


def test_start_is_logged_once_with_the_file_count_and_interval(
    make_mw: MakeMiddleware, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="reloadmw")
    make_mw(track=())
    caplog.clear()
    make_mw(interval=0.5, track=())
    modules_only = watched_count(caplog)
    message = caplog.records[0].getMessage()
    assert f"pid={os.getpid()}" in message
    assert "0.5s" in message
    caplog.clear()
    make_mw(interval=0.5)  # + views.py, config.ini, templates/index.html
    assert len(caplog.records) == 1
    assert watched_count(caplog) == modules_only + 3


def test_each_change_is_logged_once_at_info_with_pid_and_file(
    make_mw: MakeMiddleware, project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mw = make_mw()
    caplog.set_level(logging.DEBUG, logger="reloadmw")
    caplog.clear()
    views = edit(project / "views.py", "A = 2\n")
    for _ in range(5):
        get(mw)
    assert [r.levelno for r in caplog.records] == [logging.INFO], caplog.text
    message = caplog.records[0].getMessage()
    assert f"pid={os.getpid()}" in message
    assert str(views) in message
    assert "Restarts" in message, "the line does not say which action is taken"


def test_requests_without_changes_log_nothing(
    make_mw: MakeMiddleware, caplog: pytest.LogCaptureFixture, clock: Clock
) -> None:
    fast = make_mw(interval=60)
    checked = make_mw(interval=0)
    get(fast)
    caplog.set_level(logging.DEBUG, logger="reloadmw")
    caplog.clear()
    for _ in range(20):
        get(fast)
        get(checked)
        fast.reload_required()
    assert caplog.records == []
