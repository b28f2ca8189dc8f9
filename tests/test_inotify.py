"""What only the inotify backend does: watches, events, overflow, fallbacks.

The rules every backend shares (stamps, deletions, baseline, ignore, trees)
are in test_monitor_behaviour.py, which runs against this backend too.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import resource
import select
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from reloadmw.watch.inotify import InotifyMonitor
from reloadmw.watch.inotify_kernel import open_inotify
from reloadmw.watch.monitor import BACKEND_ENV, make_monitor
from reloadmw.watch.patterns import DEFAULT_IGNORE, IgnoreRules, parse_track
from tests.helpers import (
    Sandbox,
    SpyMonitor,
    counting_full_passes,
    edit,
    reported_soon,
    settle,
    wait_until,
    write,
)

if TYPE_CHECKING:
    from reloadmw.watch.inotify_kernel import Inotify


@pytest.fixture
def monitors() -> Iterator[list[InotifyMonitor]]:
    made: list[InotifyMonitor] = []
    yield made
    for monitor in made:
        monitor.close()


@pytest.fixture
def new_monitor(monitors: list[InotifyMonitor]) -> Callable[..., InotifyMonitor]:
    """An InotifyMonitor whose process "started" now, optionally on an injected inotify."""

    def make(inotify: Inotify | None = None) -> InotifyMonitor:
        monitors.append(InotifyMonitor(time.time_ns(), IgnoreRules(DEFAULT_IGNORE), inotify))
        return monitors[-1]

    return make


def watching(monitor: InotifyMonitor, files: Iterable[Path]) -> InotifyMonitor:
    monitor.add_files([str(f) for f in files])
    assert monitor.poll() == {}  # the baseline
    return monitor


def watch_count(monitor: InotifyMonitor) -> int:
    """Watches the kernel holds for the monitor's descriptor (one fdinfo line each)."""
    info = Path(f"/proc/self/fdinfo/{monitor.fileno()}").read_text()
    return sum(line.startswith("inotify wd:") for line in info.splitlines())


def has_events(monitor: InotifyMonitor, wait: float = 0.2) -> bool:
    readable, _, _ = select.select([monitor.fileno()], [], [], wait)
    return bool(readable)


# -- watches and events ----------------------------------------------------------------


def test_one_watch_per_directory_not_per_file(
    new_monitor: Callable[..., InotifyMonitor], tmp_path: Path
) -> None:
    files = [write(tmp_path / f"pkg{i % 3}" / f"mod{i}.py") for i in range(60)]
    monitor = watching(new_monitor(), files)
    assert len(monitor) == 60
    assert watch_count(monitor) == 3


def test_reading_a_watched_file_is_not_an_event(
    new_monitor: Callable[..., InotifyMonitor], tmp_path: Path
) -> None:
    files = [write(tmp_path / f"mod{i}.py", "A = 1\n") for i in range(3)]
    monitor = watching(new_monitor(), files)
    for f in files:
        f.read_text()  # open, access, close-nowrite
        os.listdir(tmp_path)
    assert not has_events(monitor)
    assert monitor.poll() == {}
    edit(files[0], "A = 2\n")  # the same descriptor does see a real change
    assert has_events(monitor)
    assert str(files[0]) in reported_soon(monitor, files[0])


def _append(f: Path) -> None:
    with f.open("a") as out:
        out.write("B = 2\n")  # modify + close-write


def _touch(f: Path) -> None:
    os.utime(f, ns=(0, 10**9))  # attrib: an older mtime restored


def _rename_over(f: Path) -> None:
    other = write(f.with_name(".save.tmp"), "A = 3\n")
    os.replace(other, f)  # moved_to


def _rename_away(f: Path) -> None:
    os.replace(f, f.with_name("moved.py"))  # moved_from


def _delete(f: Path) -> None:
    f.unlink()  # delete


@pytest.mark.parametrize("change", [_append, _touch, _rename_over, _rename_away, _delete])
def test_each_kind_of_content_change_is_an_event_and_is_reported(
    new_monitor: Callable[..., InotifyMonitor], tmp_path: Path, change: Callable[[Path], None]
) -> None:
    f = write(tmp_path / "mod.py", "A = 1\n")
    monitor = watching(new_monitor(), [f])
    change(f)
    assert has_events(monitor)
    assert str(f) in reported_soon(monitor, f)


def test_file_created_where_a_watched_file_was_missing_is_reported(
    new_monitor: Callable[..., InotifyMonitor], tmp_path: Path
) -> None:
    f = tmp_path / "settings.ini"
    monitor = watching(new_monitor(), [f])
    write(f, "[app]\n")  # create
    assert has_events(monitor)
    assert str(f) in reported_soon(monitor, f)


def test_deleted_directory_reports_its_files_and_their_return(
    new_monitor: Callable[..., InotifyMonitor], tmp_path: Path
) -> None:
    f = write(tmp_path / "pkg" / "mod.py", "A = 1\n")
    monitor = watching(new_monitor(), [f])
    f.unlink()
    f.parent.rmdir()
    assert str(f) in reported_soon(monitor, f)
    write(f, "A = 1\n")  # its watch is gone: the file is stat'ed from now on
    assert str(f) in reported_soon(monitor, f)


def test_event_queue_overflow_triggers_one_full_stat_pass(
    new_monitor: Callable[..., InotifyMonitor], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, late = (write(tmp_path / f"{name}.py", "X = 1\n") for name in ("a", "b", "late"))
    monitor = watching(new_monitor(), [a, b, late])
    full_passes = counting_full_passes(monkeypatch)
    # Fill the kernel's queue: alternate files so that no two events coalesce.
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    for i in range(limit + 10):
        os.utime(a if i % 2 else b, ns=(i, i))
    edit(late, "X = 2\n")  # its event is dropped: only the full pass can see it
    changed = monitor.poll()
    assert full_passes == [monitor._table]
    assert {str(a), str(b), str(late)} <= set(changed)
    assert monitor.poll() == {}
    assert full_passes == [monitor._table]  # back to events


def test_a_forked_worker_and_its_parent_each_see_every_change(
    new_monitor: Callable[..., InotifyMonitor], tmp_path: Path
) -> None:
    # A preforking server (gunicorn --preload, uWSGI) builds the middleware
    # before it forks: a shared event queue would give each event to one of them.
    f = write(tmp_path / "mod.py", "A = 1\n")
    monitor = watching(new_monitor(), [f])
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            assert monitor.poll() == {}
            os.write(write_end, b"ready")
            os.write(write_end, b"seen" if str(f) in reported_soon(monitor, f) else b"lost")
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        assert os.read(read_end, 5) == b"ready"
        os.utime(f, ns=(0, 10**9))  # one event only (attrib)
        assert str(f) in reported_soon(monitor, f)
        assert os.read(read_end, 4) == b"seen"
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)


# -- modules imported later ------------------------------------------------------------


def test_module_imported_after_start_gets_a_watch_at_the_next_check(
    sandbox: Sandbox, spies: list[SpyMonitor]
) -> None:
    module = write(sandbox.root / "late_pkg" / "late_module.py", "VALUE = 1\n")
    write(sandbox.root / "late_pkg" / "__init__.py")
    app = sandbox.middleware(backend="inotify")
    monitor = spies[0].inner
    assert isinstance(monitor, InotifyMonitor)
    watches = watch_count(monitor)
    __import__("late_pkg.late_module")
    assert app.check() == []
    assert watch_count(monitor) == watches + 1  # one for late_pkg/
    edit(module, "VALUE = 2\n")
    changed: list[str] = []

    def seen() -> bool:
        changed.extend(app.check())
        return str(module) in changed

    wait_until(seen, 3.0, lambda: f"reported: {changed}", poll=0)


# -- choosing the backend ----------------------------------------------------------------


def test_auto_falls_back_to_stat_with_one_warning_when_inotify_cannot_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    open_inotify().close()  # load the library before file descriptors run out
    caplog.set_level(logging.INFO, logger="reloadmw")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (0, hard))  # a real EMFILE
    try:
        monitor = make_monitor("auto", time.time_ns(), IgnoreRules(()))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert monitor.name == "stat"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, caplog.text
    assert f"pid={os.getpid()}" in warnings[0]
    assert "Too many open files" in warnings[0]
    assert "fs.inotify.max_user_instances" in warnings[0]
    assert 'backend="stat"' in warnings[0]


def test_inotify_asked_for_by_name_raises_when_it_cannot_start() -> None:
    open_inotify().close()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (0, hard))
    try:
        with pytest.raises(RuntimeError, match="inotify cannot start"):
            make_monitor("inotify", time.time_ns(), IgnoreRules(()))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class WatchLimit:
    """A real inotify instance whose watches run out (ENOSPC) after ``allowed``."""

    def __init__(self, allowed: int) -> None:
        self._real = open_inotify()
        self.allowed = allowed

    def fileno(self) -> int:
        return self._real.fileno()

    def add_watch(self, path: str, mask: int) -> int:
        if self.allowed == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        self.allowed -= 1
        return self._real.add_watch(path, mask)

    def rm_watch(self, wd: int) -> None:
        self._real.rm_watch(wd)

    def close(self) -> None:
        self._real.close()


@pytest.fixture
def full_passes(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The full stat passes of the test's monitors (its log captured from INFO)."""
    caplog.set_level(logging.INFO, logger="reloadmw")
    return counting_full_passes(monkeypatch)


def test_watch_limit_polls_only_the_files_without_a_watch_with_one_warning(
    new_monitor: Callable[..., InotifyMonitor],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    full_passes: list[object],
) -> None:
    files = [write(tmp_path / f"pkg{i}" / "mod.py", "A = 1\n") for i in range(4)]
    monitor = watching(new_monitor(WatchLimit(allowed=1)), files)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, caplog.text
    assert "fs.inotify.max_user_watches" in warnings[0]
    assert f"pid={os.getpid()}" in warnings[0]
    assert watch_count(monitor) == 1
    assert monitor.polled_files() == {str(f) for f in files[1:]}
    for f in (files[0], files[3]):  # with a watch, and without one
        edit(f, "A = 2\n")
        assert str(f) in reported_soon(monitor, f)
    assert monitor.poll() == {}
    assert full_passes == []


def test_watch_limit_in_a_tracked_tree_polls_its_unwatched_directories(
    new_monitor: Callable[..., InotifyMonitor],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    full_passes: list[object],
) -> None:
    files = [write(tmp_path / "site" / f"d{i}" / "page.html", "<p>") for i in range(5)]
    monitor = new_monitor(WatchLimit(allowed=3))
    tree = parse_track("site/", str(tmp_path))
    assert not isinstance(tree, str)
    monitor.add_tree(tree)
    assert monitor.poll() == {}
    assert watch_count(monitor) == 3
    assert len(monitor.polled_files()) == 3  # 6 directories, 3 watches: 3 of 5 files polled
    for f in files:
        edit(f, "<div>")
    reported_soon(monitor, *files)
    new = [write(f.with_name("new.html"), age=0) for f in files]  # found in every directory
    reported_soon(monitor, *new)
    assert full_passes == []
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


@pytest.mark.parametrize(
    ("env", "argument", "expected"),
    [
        ("stat", "auto", "stat"),
        ("inotify", "auto", "inotify"),
        ("", "auto", "inotify"),
        ("inotify", "stat", "stat"),  # an explicit argument wins
    ],
)
def test_backend_env_var_chooses_the_backend_for_auto(
    monkeypatch: pytest.MonkeyPatch, env: str, argument: str, expected: str
) -> None:
    monkeypatch.setenv(BACKEND_ENV, env)
    monitor = make_monitor(argument, time.time_ns(), IgnoreRules(()))
    try:
        assert monitor.name == expected
    finally:
        monitor.close()


def test_unknown_backend_in_env_var_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "watchman")
    with pytest.raises(ValueError, match=f"{BACKEND_ENV}='watchman'.*stat, inotify"):
        make_monitor("auto", time.time_ns(), IgnoreRules(()))


# -- under load, and when idle -------------------------------------------------------------


def _get(app: Callable[..., Any]) -> str:
    statuses: list[str] = []
    body = app({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, lambda s, h, e=None: statuses.append(s))
    try:
        assert b"".join(body) == b"hello"
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return statuses[0]


def test_interval_zero_under_concurrent_load_checks_every_request_and_restarts_once(
    sandbox: Sandbox, spies: list[SpyMonitor]
) -> None:
    config = write(sandbox.root / "config.ini", "[app]\n")
    restarts = sandbox.restarts
    # quiet=0.2, the default, not the sandbox's 0
    app = sandbox.middleware(quiet=0.2, track=[str(config)], backend="inotify")
    spy = spies[0]
    assert spy.name == "inotify"
    polls = spy.polls
    for _ in range(50):
        assert _get(app) == "200 OK"
    assert spy.polls - polls == 50  # every request checked
    stop = threading.Event()

    def hammer() -> int:
        served = 0
        while not stop.is_set():
            assert _get(app) == "200 OK"
            served += 1
        return served

    with ThreadPoolExecutor(max_workers=8) as pool:
        workers = [pool.submit(hammer) for _ in range(8)]
        wait_until(lambda: spy.polls >= polls + 50 + 16)  # the 8 threads are serving
        # By rename: the 8 threads starve this one of the GIL, so a write in
        # place could leave the file empty for longer than the quiet period.
        os.replace(edit(sandbox.root / "config.ini.new", "[app]\ndebug = true\n"), config)
        wait_until(lambda: restarts.reasons, 3.0, poll=0.01)
        settle(lambda: len(restarts) == 1, 0.2, lambda: str(restarts.reasons))
        stop.set()
        served = sum(w.result() for w in workers)
    assert served > 100
    assert restarts.reasons == [[str(config)]]


def test_no_thread_and_no_cpu_while_idle(sandbox: Sandbox, spies: list[SpyMonitor]) -> None:
    threads = threading.active_count()
    app = sandbox.middleware()
    assert spies[0].name == "inotify"
    assert _get(app) == "200 OK"
    assert threading.active_count() == threads
    cpu = time.process_time()
    time.sleep(1.0)
    assert time.process_time() - cpu < 0.02


def test_instances_of_dropped_middlewares_are_collected_before_inotify_gives_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A reference cycle keeps each dropped monitor (and its inotify instance)
    # alive until the cycle collector runs; the limit is 128 per user by default.
    limit = int(Path("/proc/sys/fs/inotify/max_user_instances").read_text())
    gc.collect()
    gc.disable()
    try:
        for _ in range(limit + 1):
            monitor = make_monitor("inotify", time.time_ns(), IgnoreRules(()))
            monitor.cycle = monitor  # type: ignore[attr-defined]
            del monitor
    finally:
        gc.enable()
        gc.collect()
