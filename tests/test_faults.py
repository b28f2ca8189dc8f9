"""Faults and edge cases, in-process with real files and real threads.

Every test runs with each change-detection backend. The restart strategy
only records the reason, so "one restart trigger per change" is counted
directly.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import tracemalloc
import types
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from reloadmw import ReloadMiddleware
from reloadmw.watch.monitor import BACKENDS
from tests.helpers import Sandbox, counting_checks, edit, settle, wait_until
from tests.rig import DAEMON_USER, make_world_readable_dir

#: Every concrete backend; "auto" picks one of them.
CONCRETE = [b for b in BACKENDS if b != "auto"]


@pytest.fixture(params=CONCRETE)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def hello(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def start_response(
    status: str, headers: list[tuple[str, str]], exc_info: Any = None
) -> Callable[[bytes], object]:
    return lambda data: None


def call(middleware: ReloadMiddleware) -> bytes:
    """One request straight through the middleware, closing the body as a server does."""
    body = middleware({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, start_response)
    try:
        return b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# -- files and directories that misbehave --------------------------------------


def test_a_deleted_watched_directory_is_a_change_and_its_return_is_another(
    sandbox: Sandbox, backend: str
) -> None:
    page = sandbox.write("templates/deep/page.html", "<p>1</p>")
    mw = sandbox.middleware(hello, backend=backend, track=("templates/",))

    shutil.rmtree(sandbox.root / "templates")
    call(mw)
    call(mw)
    assert sandbox.restarts.reasons == [[str(page)]]

    sandbox.write("templates/deep/page.html", "<p>2</p>")
    wait_until(lambda: call(mw) and len(sandbox.restarts) == 2, 5.0)
    assert sandbox.restarts.reasons[1] == [str(page)]


def test_a_file_that_cannot_be_stat_ed_is_logged_once_and_not_a_change(
    sandbox: Sandbox,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = sandbox.write("secret.ini", "[db]\n")
    mw = sandbox.middleware(hello, backend=backend, track=("secret.ini",))
    real_stat = os.stat

    def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if os.fspath(path) == str(secret):
            raise PermissionError(13, "Permission denied", str(secret))
        return real_stat(path, *args, **kwargs)

    caplog.set_level(logging.INFO, logger="reloadmw")
    monkeypatch.setattr(os, "stat", stat)
    secret.chmod(0o640)  # an event for the inotify backend, whose stat then fails
    for _ in range(3):
        call(mw)
    monkeypatch.setattr(os, "stat", real_stat)
    call(mw)

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "cannot stat" in w and str(secret) in w]) == 1
    assert sandbox.restarts.reasons == []
    edit(secret, "[db]\nname = app\n")
    wait_until(lambda: call(mw) and len(sandbox.restarts) == 1, 5.0)


UNREADABLE_SCRIPT = """\
import json, os, sys, time
from reloadmw import ReloadMiddleware

restarts = []
mw = ReloadMiddleware(lambda e, s: [], interval=0, quiet=0, backend=sys.argv[2],
                      track=(sys.argv[1],), restart=restarts.append)
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()  # the test has taken the directory's permission away
found = mw.check()
sys.stdout.write(json.dumps({"found": found, "restarts": restarts}) + "\\n"); sys.stdout.flush()
"""


# The www-data process needs an interpreter the daemon user can run: Debian's, as the servers do.
@pytest.mark.server
def test_a_file_the_daemon_user_cannot_reach_is_not_a_change_for_real(backend: str) -> None:
    """EACCES for real: a www-data process watching a file whose directory loses its x bit."""
    top = make_world_readable_dir("reloadmw-eacces-")
    try:
        private = top / "private"
        private.mkdir(mode=0o755)
        watched = private / "settings.ini"
        watched.write_text("[app]\n")
        script = top / "watch.py"
        script.write_text(UNREADABLE_SCRIPT)
        user = DAEMON_USER if os.geteuid() == 0 else None
        process = subprocess.Popen(
            [sys.executable, str(script), str(watched), backend],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            user=user,
            cwd=str(top),
        )
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline() == "ready\n", process.stderr and process.stderr.read()
        private.chmod(0o700)  # www-data can no longer stat anything inside
        process.stdin.write("go\n")
        process.stdin.flush()
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert out.strip().endswith('{"found": [], "restarts": []}'), out
        # stat polls the file and says so once; inotify saw no event for it, so has nothing to say.
        assert err.count("cannot stat") == (1 if backend == "stat" else 0), err
        assert "Traceback" not in err, err
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_a_symlinked_file_is_a_change_when_retargeted_and_when_its_target_changes(
    sandbox: Sandbox, backend: str
) -> None:
    first = sandbox.write("real/one.ini", "one\n")
    second = sandbox.write("real/two.ini", "two\n")
    link = sandbox.root / "conf" / "current.ini"
    link.parent.mkdir()
    link.symlink_to(first)
    mw = sandbox.middleware(hello, backend=backend, track=("conf/current.ini",))

    tmp_link = link.with_name("current.ini.new")
    tmp_link.symlink_to(second)
    tmp_link.replace(link)  # retarget atomically, as deploy tools do
    wait_until(lambda: call(mw) and len(sandbox.restarts) == 1, 5.0)

    edit(second, "two, edited\n")
    wait_until(lambda: call(mw) and len(sandbox.restarts) == 2, 5.0)
    assert sandbox.restarts.reasons == [[str(link)], [str(link)]]


def test_a_module_whose_file_is_none_is_skipped(
    sandbox: Sandbox, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ghost = types.ModuleType("reloadmw_test_ghost")
    ghost.__file__ = None
    monkeypatch.setitem(sys.modules, "reloadmw_test_ghost", ghost)
    mw = sandbox.middleware(hello, backend=backend)

    assert call(mw) == b"ok"
    assert mw.check() == []


def test_a_module_in_a_namespace_package_is_watched(sandbox: Sandbox, backend: str) -> None:
    module = sandbox.write("nsfaults/inner.py", "VALUE = 1\n")
    importlib.import_module("nsfaults.inner")
    assert getattr(sys.modules["nsfaults"], "__file__", None) is None
    mw = sandbox.middleware(hello, backend=backend)

    edit(module, "VALUE = 2\n")
    wait_until(lambda: call(mw) and len(sandbox.restarts) == 1, 5.0)
    assert sandbox.restarts.reasons == [[str(module)]]


def test_a_module_imported_from_a_zip_is_watched_through_the_zip(
    sandbox: Sandbox, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = sandbox.root / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("zipped_faults.py", "VALUE = 1\n")
    monkeypatch.syspath_prepend(str(archive))
    importlib.import_module("zipped_faults")
    mw = sandbox.middleware(hello, backend=backend)

    with zipfile.ZipFile(archive, "a") as bundle:
        bundle.writestr("extra.txt", "a rebuilt archive")
    wait_until(lambda: call(mw) and len(sandbox.restarts) == 1, 5.0)
    assert sandbox.restarts.reasons == [[str(archive)]]
    sys.modules.pop("zipped_faults", None)


def test_once_mod_wsgi_calls_the_hook_only_the_hook_detects_changes(
    sandbox: Sandbox, backend: str
) -> None:
    """A change seen by the app call would restart only after that response, while
    requests arriving meanwhile pass the hook and get old code."""
    watched = sandbox.write("hooked.py", "VALUE = 0\n")
    mw = sandbox.middleware(hello, backend=backend, track=("hooked.py",))
    assert mw.reload_required("/") is False

    edit(watched, "VALUE = 1\n")
    time.sleep(0.05)  # a slow first request: the check is due again when the app is called
    assert call(mw) == b"ok"
    assert sandbox.restarts.reasons == []

    assert wait_until(lambda: mw.reload_required("/"), 5.0) is True
    assert mw.reload_required("/") is True  # every later request of this process too
    assert call(mw) == b"ok" and sandbox.restarts.reasons == []


# -- threads ---------------------------------------------------------------------


def save_atomically(path: Path, text: str) -> None:
    """One change, as an editor saving by rename makes it.

    A write in place is two changes (truncate, then write) and, while 16
    threads hold the GIL, the test thread can sit between them for longer
    than any quiet period: the middleware then rightly restarts twice.
    """
    temporary = path.with_name(path.name + ".saving")
    temporary.write_text(text)
    temporary.replace(path)


def hammer(mw: ReloadMiddleware, stop: threading.Event, failures: list[BaseException]) -> None:
    while not stop.is_set():
        try:
            assert call(mw) == b"ok"
        except BaseException as exc:  # report anything to the test thread
            failures.append(exc)
            return
        time.sleep(0)  # a server thread waits on its socket between requests


def test_imports_in_other_threads_during_scans_cause_no_error_and_one_trigger_per_change(
    sandbox: Sandbox, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    names = [f"stress_mod_{i:03d}" for i in range(40)]
    for name in names:
        sandbox.write(f"{name}.py", "VALUE = 1\n")
    watched = sandbox.write("stress_watched.py", "VALUE = 0\n")
    importlib.import_module("stress_watched")
    caplog.set_level(logging.INFO, logger="reloadmw")
    mw = sandbox.middleware(hello, backend=backend)
    stop = threading.Event()
    failures: list[BaseException] = []

    def importer(chunk: list[str]) -> None:
        """Import, alias, drop and import again, until the test ends."""
        try:
            while not stop.is_set():
                for name in chunk:
                    importlib.import_module(name)
                    sys.modules[f"{name}_alias"] = sys.modules.pop(name)
                for name in chunk:
                    del sys.modules[f"{name}_alias"]
        except BaseException as exc:
            failures.append(exc)

    requests = [threading.Thread(target=hammer, args=(mw, stop, failures)) for _ in range(16)]
    importers = [threading.Thread(target=importer, args=(names[i::4],)) for i in range(4)]
    for thread in requests + importers:
        thread.start()
    try:
        for number in range(1, 6):
            save_atomically(watched, f"VALUE = {number}\n")
            wait_until(lambda n=number: len(sandbox.restarts) >= n, 10.0)
        # The request threads keep checking: no late duplicate trigger.
        settle(lambda: len(sandbox.restarts) == 5, 0.2, lambda: str(sandbox.restarts.reasons))
    finally:
        stop.set()
        for thread in requests + importers:
            thread.join()

    assert failures == []
    assert errors(caplog) == []
    assert sandbox.restarts.reasons == [[str(watched)]] * 5


def test_interval_zero_under_concurrent_load_checks_every_request_and_misses_nothing(
    sandbox: Sandbox, backend: str
) -> None:
    watched = sandbox.write("hot.py", "VALUE = 0\n")
    importlib.import_module("hot")
    mw = sandbox.middleware(hello, backend=backend)
    checks = counting_checks(mw)
    served = [0] * 16
    stop = threading.Event()

    def client(index: int) -> None:
        while not stop.is_set():
            call(mw)
            served[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    try:
        for number in range(1, 6):
            save_atomically(watched, f"VALUE = {number}\n")
            wait_until(lambda n=number: len(sandbox.restarts) >= n, 10.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert sandbox.restarts.reasons == [[str(watched)]] * 5
    # Every request went to the check (it scanned, or another thread was scanning),
    # except one that read the clock just before another thread's scan began and
    # compared after it: that scan covers it.
    assert all(served)
    assert sum(served) - len(checks) <= sum(served) // 10_000


# -- memory --------------------------------------------------------------------


def test_100000_requests_with_nothing_changing_do_not_grow_memory(
    sandbox: Sandbox, backend: str
) -> None:
    sandbox.write("steady.py", "VALUE = 0\n")
    importlib.import_module("steady")
    mw = sandbox.middleware(hello, backend=backend, interval=0.01)
    for _ in range(2_000):  # warm up caches and free lists
        call(mw)
    gc.collect()
    tracemalloc.start(5)
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(100_000):
            call(mw)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()

    growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    reloadmw_growth = [
        stat
        for stat in after.compare_to(before, "lineno")
        if "reloadmw" in stat.traceback[0].filename and stat.size_diff > 0
    ]
    assert growth < 64 * 1024, after.compare_to(before, "lineno")[:10]
    assert sum(s.size_diff for s in reloadmw_growth) < 4 * 1024, reloadmw_growth[:10]
    assert sandbox.restarts.reasons == []
