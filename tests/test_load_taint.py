"""In-process: code loaded while its files changed is tainted, and the hook holds it until quiet.

A middleware made from a factory that saves a watched file stands for a
process whose load overlapped an edit. Its ``reload_required`` answers True
only once no watched file has changed for ``quiet`` seconds (at most
``MAX_HOLD``), and it never raises. An untainted middleware answers False
while a burst is still being written, as before.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from reloadmw import ReloadMiddleware
from reloadmw.load_taint import LoadTaint
from reloadmw.pending import PendingChanges
from reloadmw.restart.restarter import Restarter
from tests.helpers import (
    Sandbox,
    SpyMonitor,
    edit,
    hello_app,
    hold_at_most,
    load_taint,
    wait_until,
    write,
)

QUIET = 1.0  # far longer than the writers' gaps, also on a busy machine


@pytest.fixture
def views(sandbox: Sandbox) -> Path:
    """A watched module saved long before any middleware of the test was made."""
    return write(sandbox.root / "views.py", "A = 1\n")


def loaded_during_an_edit(sandbox: Sandbox, views: Path, **options: Any) -> ReloadMiddleware:
    """A middleware whose app factory saves ``views.py`` while the app loads."""

    def factory() -> Any:
        edit(views, "A = 2\n")
        return hello_app

    settings: dict[str, Any] = {"quiet": QUIET, "track": ("views.py",), "factory": True}
    return sandbox.middleware(factory, **{**settings, **options})


class Writer:
    """A thread saving ``path`` every ``gap`` seconds, ``count`` times (or until stopped)."""

    def __init__(self, path: Path, gap: float = 0.05, count: int = 10_000) -> None:
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, args=(path, gap, count))

    def _write(self, path: Path, gap: float, count: int) -> None:
        for number in range(count):
            if self._stop.wait(gap):
                break
            edit(path, f"A = {number + 3}\n")
        self.done.set()

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def short_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook holds a request at most 0.5 s."""
    hold_at_most(monkeypatch, 0.5)


# -- the decision ---------------------------------------------------------------------------


def taint() -> LoadTaint:
    return LoadTaint(PendingChanges(0.2, True), Restarter(None), threading.RLock(), lambda: None)


def test_a_change_the_first_scan_finds_taints() -> None:
    # The first scan runs right after the load: what it finds was saved since the start.
    decision = taint()
    decision.note({"/app/a.py": 100.0}, [])
    assert decision.tainted


def test_a_change_a_later_scan_finds_does_not_taint_whatever_its_timestamp() -> None:
    # A file's time comes from the kernel's coarse clock, which can lag time.time():
    # a save just after the load may be dated before its end.
    decision = taint()
    decision.note({}, ["/app/a.py"])
    decision.note({"/app/a.py": 1.0}, [])
    assert not decision.tainted


def test_a_module_first_watched_already_changed_taints_whenever_it_was_imported() -> None:
    decision = taint()
    decision.note({}, ["/app/a.py"])
    decision.note({"/app/late.py": 150.0}, ["/app/late.py", "/app/other.py"])
    assert decision.tainted


def test_a_module_first_watched_unchanged_does_not_taint() -> None:
    decision = taint()
    decision.note({}, ["/app/a.py"])
    decision.note({"/app/a.py": 150.0}, ["/app/late.py"])
    assert not decision.tainted


def test_a_taint_stays() -> None:
    decision = taint()
    decision.note({"/app/a.py": 99.0}, [])
    decision.note({}, [])
    decision.note({"/app/a.py": 200.0}, [])
    assert decision.tainted


# -- the middleware -------------------------------------------------------------------------


def test_an_edit_during_the_load_taints_the_process(
    sandbox: Sandbox, views: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reloadmw")
    mw = loaded_during_an_edit(sandbox, views)
    assert load_taint(mw).tainted
    assert any("changed while this process was loading" in r.getMessage() for r in caplog.records)


def test_an_edit_after_the_load_keeps_serving_old_code_until_quiet(
    sandbox: Sandbox, views: Path
) -> None:
    mw = sandbox.middleware(quiet=QUIET, track=("views.py",))
    edit(views, "A = 2\n")
    assert mw.reload_required() is False, "an untainted process serves while a burst is written"
    assert not load_taint(mw).tainted


def test_a_module_imported_after_the_load_that_had_changed_taints(sandbox: Sandbox) -> None:
    mw = sandbox.middleware(quiet=QUIET)
    write(sandbox.root / "rmw_taint_old.py", "A = 1\n")
    importlib.import_module("rmw_taint_old")
    mw.check()
    assert not load_taint(mw).tainted, "imported late, but unchanged since the process started"
    edit(sandbox.root / "rmw_taint_new.py", "A = 1\n")
    importlib.import_module("rmw_taint_new")
    mw.check()
    assert load_taint(mw).tainted


def test_the_hook_holds_a_tainted_process_until_the_files_are_quiet(
    sandbox: Sandbox, views: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reloadmw")
    mw = loaded_during_an_edit(sandbox, views)
    with Writer(views, gap=0.05, count=10) as writer:
        assert mw.reload_required("/app.wsgi") is True
        assert writer.done.is_set(), "answered while the files were still being written"
    assert mw.reload_required("/app.wsgi") is True
    assert mw.restarts == 1
    assert sandbox.restarts.reasons == [], "mod_wsgi restarts the process, not the strategy"
    [line] = [r.getMessage() for r in caplog.records if "held this request" in r.getMessage()]
    assert "until the files were quiet" in line and str(views) in line


def test_the_hold_is_bounded(
    sandbox: Sandbox, views: Path, short_hold: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reloadmw")
    mw = loaded_during_an_edit(sandbox, views)
    with Writer(views, gap=0.05) as writer:
        assert mw.reload_required("/app.wsgi") is True
        assert not writer.done.is_set(), "the hold waited for a writer that never stops"
    assert any("(the most it waits)" in r.getMessage() for r in caplog.records)


def test_a_changed_file_that_does_not_compile_is_held_at_most_the_bound(
    sandbox: Sandbox, short_hold: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reloadmw")
    views = write(sandbox.root / "views.py", "A = 1\n")

    def factory() -> Any:
        edit(views, "def broken(:\n")
        return hello_app

    mw = sandbox.middleware(factory, quiet=0.05, track=("views.py",), factory=True)
    assert mw.reload_required() is True
    messages = [r.getMessage() for r in caplog.records]
    assert any("not restarting" in m and "views.py" in m for m in messages)
    assert any("(the most it waits)" in m for m in messages)


def test_a_failing_look_while_holding_is_logged_and_the_hook_answers_true(
    sandbox: Sandbox,
    views: Path,
    spies: list[SpyMonitor],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mw = loaded_during_an_edit(sandbox, views)

    def broken_poll() -> dict[str, float]:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(spies[-1], "poll", broken_poll)
    assert mw.reload_required() is True
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("while holding a request" in r.getMessage() and r.exc_info for r in errors)


def test_other_threads_check_and_serve_while_a_request_is_held(
    sandbox: Sandbox, views: Path
) -> None:
    mw = loaded_during_an_edit(sandbox, views)
    answers: list[bool] = []
    with Writer(views, gap=0.05):
        held = threading.Thread(target=lambda: answers.append(mw.reload_required()))
        held.start()
        assert sandbox.client(mw).get("/").text == "hello"
        assert isinstance(mw.check(), list)
        assert held.is_alive(), "the held request should wait while the files change"
    held.join(30)
    assert answers == [True]


def test_requests_held_together_restart_once(sandbox: Sandbox, views: Path) -> None:
    mw = loaded_during_an_edit(sandbox, views)
    answers: list[bool] = []
    with Writer(views, gap=0.05, count=6):
        threads = [
            threading.Thread(target=lambda: answers.append(mw.reload_required())) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert answers == [True] * 4
    assert mw.restarts == 1


def test_without_the_hook_a_tainted_process_restarts_once_quiet_after_the_response(
    sandbox: Sandbox, views: Path
) -> None:
    mw = loaded_during_an_edit(sandbox, views)
    client = sandbox.client(mw)
    # Requests without pause, and a save every 0.05 s between them. One thread does
    # both: a writer thread could be kept from running for longer than QUIET.
    saves, saved_at, longest = 0, time.monotonic(), 0.0
    while saves < 10:
        if (since := time.monotonic() - saved_at) >= 0.05:
            edit(views, f"A = {saves + 3}\n")
            saves, saved_at, longest = saves + 1, saved_at + since, max(longest, since)
        assert client.get("/").text == "hello"
        assert sandbox.restarts.reasons == [], (
            f"restarted before the files were quiet ({QUIET}s); longest gap {longest:.3f}s"
        )
    wait_until(lambda: client.get("/") and sandbox.restarts.reasons, 10)
    assert sandbox.restarts.reasons == [[str(views)]]
