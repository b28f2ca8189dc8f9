"""What counts as a change, for every change-detection backend.

Each test runs against every backend in ``reloadmw.watch.monitor.BACKENDS`` (but
``auto``), built with ``make_monitor``, and against the ``auto`` monitor with the
test's directory on an NFS mount (so every file is polled); it uses only the
``Monitor`` protocol, so a new backend must pass the same tests.  An
event-driven backend may report a change a moment late, so positive checks
poll until the change shows up and negative checks poll for a short while.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reloadmw.watch.auto import AutoMonitor
from reloadmw.watch.monitor import BACKENDS, Monitor, make_monitor
from reloadmw.watch.patterns import DEFAULT_IGNORE, IgnoreRules, glob_tree, parse_track
from reloadmw.watch.trees import MAX_TRACKED, WALK_STEP
from tests.helpers import (
    AGE,
    REPO,
    edit,
    fan_out_tree,
    mountinfo_with,
    mtime_ns,
    never_reported,
    reported_soon,
    set_mtime,
    tracking_at_most,
    wait_until,
    walking_at_most,
    write,
)

MakeMonitor = Callable[..., Monitor]
#: The auto monitor, with the test's directory on a (pretended) NFS mount.
POLLED = "auto-polled"


@pytest.fixture(params=[*(name for name in BACKENDS if name != "auto"), POLLED])
def new_monitor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeMonitor]:
    """Build monitors of the backend under test; by default the process "started" now."""
    made: list[Monitor] = []

    def make(start_ns: int | None = None) -> Monitor:
        start = time.time_ns() if start_ns is None else start_ns
        ignored = IgnoreRules(DEFAULT_IGNORE)
        if request.param == POLLED:
            made.append(AutoMonitor(start, ignored, mountinfo=mountinfo_with(tmp_path, "nfs4")))
        else:
            made.append(make_monitor(request.param, start, ignored))
        return made[-1]

    yield make
    for monitor in made:
        monitor.close()


def watching(new_monitor: MakeMonitor, *files: Path) -> Monitor:
    """A monitor watching ``files``, past its first (baseline) poll."""
    monitor = new_monitor()
    monitor.add_files([str(f) for f in files])
    monitor.poll()
    return monitor


def tracking(new_monitor: MakeMonitor, pattern: str, root: Path) -> Monitor:
    """A monitor tracking a directory or glob, past its first (baseline) poll."""
    monitor = new_monitor()
    tree = parse_track(pattern, str(root))
    assert not isinstance(tree, str), f"{pattern!r} should be a tree"
    monitor.add_tree(tree)
    monitor.poll()
    return monitor


# -- edits to a watched file ---------------------------------------------------


def test_nothing_changed_reports_nothing(new_monitor: MakeMonitor, tmp_path: Path) -> None:
    f = write(tmp_path / "a.py", "A = 1\n")
    monitor = watching(new_monitor, f)
    never_reported(monitor)


def test_edit_in_the_same_second_with_same_size_counts(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    f = write(tmp_path / "a.py", "A = 1\n")
    second = mtime_ns(f) // 10**9 * 10**9
    set_mtime(f, second + 100)
    monitor = watching(new_monitor, f)
    f.write_text("A = 2\n")
    set_mtime(f, second + 500)  # same whole second, same size, same inode
    assert str(f) in reported_soon(monitor, f)


def test_save_by_rename_with_same_size_and_restored_mtime_counts(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    f = write(tmp_path / "a.py", "A = 1\n")
    before = os.stat(f)
    monitor = watching(new_monitor, f)
    tmp = write(tmp_path / ".a.py.tmp", "A = 2\n")
    set_mtime(tmp, before.st_mtime_ns)
    os.replace(tmp, f)
    after = os.stat(f)
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    assert str(f) in reported_soon(monitor, f)


def test_older_copy_restored_over_a_file_counts(new_monitor: MakeMonitor, tmp_path: Path) -> None:
    f = write(tmp_path / "a.py", "A = 1\n", age=10)
    monitor = watching(new_monitor, f)
    write(f, "A = 0\n", age=AGE)  # mtime goes backwards, size unchanged
    assert str(f) in reported_soon(monitor, f)


def test_deleted_file_counts(new_monitor: MakeMonitor, tmp_path: Path) -> None:
    f = write(tmp_path / "a.py", "A = 1\n")
    monitor = watching(new_monitor, f)
    f.unlink()
    assert str(f) in reported_soon(monitor, f)


def test_file_reappearing_after_deletion_counts(new_monitor: MakeMonitor, tmp_path: Path) -> None:
    f = write(tmp_path / "a.py", "A = 1\n")
    monitor = watching(new_monitor, f)
    f.unlink()
    assert str(f) in reported_soon(monitor, f)
    write(f, "A = 1\n")
    assert str(f) in reported_soon(monitor, f)


def test_each_change_is_reported_once(new_monitor: MakeMonitor, tmp_path: Path) -> None:
    f = write(tmp_path / "a.py", "A = 1\n")
    monitor = watching(new_monitor, f)
    edit(f, "A = 2\n")
    assert str(f) in reported_soon(monitor, f)
    never_reported(monitor)


def test_unreadable_file_is_logged_once_and_is_not_a_change(
    new_monitor: MakeMonitor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Root reads everything, so deny the stat the way the kernel would for EACCES.
    f = write(tmp_path / "secret" / "a.py", "A = 1\n")
    monitor = watching(new_monitor, f)
    real_stat, real_lstat = os.stat, os.lstat

    def denied(real: Callable[..., os.stat_result]) -> Callable[..., os.stat_result]:
        def stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
            if os.fspath(path) == str(f):  # type: ignore[call-overload]
                raise PermissionError(13, "Permission denied", str(f))
            return real(path, *args, **kwargs)

        return stat

    monkeypatch.setattr(os, "stat", denied(real_stat))
    monkeypatch.setattr(os, "lstat", denied(real_lstat))
    caplog.set_level(logging.DEBUG, logger="reloadmw")
    edit(f, "A = 2\n")
    never_reported(monitor)
    edit(f, "A = 3\n")
    never_reported(monitor)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text
    assert str(f) in warnings[0].getMessage()
    assert f"pid={os.getpid()}" in warnings[0].getMessage()

    monkeypatch.undo()  # readable again: the edits made meanwhile now count
    assert str(f) in reported_soon(monitor, f)


# -- ignore rules ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.py.swp", "notes~", ".#a.py", "#a.py#", "__pycache__/a.pyc"])
def test_ignored_files_in_a_tracked_directory_never_count(
    new_monitor: MakeMonitor, tmp_path: Path, name: str
) -> None:
    monitor = tracking(new_monitor, "app/", tmp_path)
    f = edit(tmp_path / "app" / name, "x")
    never_reported(monitor, f)
    edit(f, "xy")
    never_reported(monitor, f)


def test_ignored_file_named_explicitly_never_counts(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    f = write(tmp_path / "a.py.swp", "x")
    monitor = watching(new_monitor, f)
    edit(f, "xy")
    f.unlink()
    never_reported(monitor)


# -- directories and globs ----------------------------------------------------------


def test_new_file_in_a_tracked_directory_counts(new_monitor: MakeMonitor, tmp_path: Path) -> None:
    write(tmp_path / "templates" / "index.html", "<p>")
    monitor = tracking(new_monitor, "templates/", tmp_path)
    new = write(tmp_path / "templates" / "about.html", "<p>")  # old mtime: its arrival counts
    assert str(new) in reported_soon(monitor, new)


def test_new_file_in_a_new_subdirectory_of_a_tracked_directory_counts(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    write(tmp_path / "templates" / "index.html", "<p>")
    monitor = tracking(new_monitor, "templates/", tmp_path)
    new = write(tmp_path / "templates" / "admin" / "users.html", "<p>")
    assert str(new) in reported_soon(monitor, new)


def test_edit_to_a_file_in_a_tracked_directory_counts(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    f = write(tmp_path / "templates" / "deep" / "index.html", "<p>")
    monitor = tracking(new_monitor, "templates", tmp_path)
    edit(f, "<div>")
    assert str(f) in reported_soon(monitor, f)


def test_new_file_counts_even_when_the_directory_mtime_does_not_move(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    # Coarse timestamps (1 s on some filesystems, a clock tick on older kernels):
    # a file created in the same tick as the last change leaves the mtime as it was.
    templates = write(tmp_path / "templates" / "index.html", "<p>").parent
    tick = time.time_ns() - 10**8
    set_mtime(templates, tick)
    monitor = tracking(new_monitor, "templates/", tmp_path)
    new = write(templates / "about.html", "<p>")
    set_mtime(templates, tick)
    assert str(new) in reported_soon(monitor, new)


def test_directory_changing_before_the_first_poll_does_not_make_old_files_new(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    old = write(tmp_path / "templates" / "old.html", "<p>")
    monitor = new_monitor()
    tree = parse_track("templates/", str(tmp_path))
    assert not isinstance(tree, str)
    monitor.add_tree(tree)
    new = write(tmp_path / "templates" / "new.html", "<p>")
    seen = reported_soon(monitor, new)
    assert str(new) in seen
    assert str(old) not in seen
    never_reported(monitor, old)


def test_glob_tracking_picks_up_a_new_matching_file(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    write(tmp_path / "static" / "site.css", "a{}")
    monitor = tracking(new_monitor, "static/**/*.css", tmp_path)
    new = write(tmp_path / "static" / "themes" / "dark" / "dark.css", "b{}")
    assert str(new) in reported_soon(monitor, new)


def test_glob_tracking_ignores_files_that_do_not_match(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    js = write(tmp_path / "static" / "app.js", "1")
    monitor = tracking(new_monitor, "static/**/*.css", tmp_path)
    edit(js, "2")
    write(tmp_path / "static" / "themes" / "dark.js", "1")
    write(tmp_path / "static" / "themes" / "dark.css.map", "1")
    never_reported(monitor)


def test_glob_star_does_not_cross_directories(new_monitor: MakeMonitor, tmp_path: Path) -> None:
    top = write(tmp_path / "static" / "site.css", "a{}")
    nested = write(tmp_path / "static" / "themes" / "dark.css", "a{}")
    monitor = tracking(new_monitor, "static/*.css", tmp_path)
    edit(nested, "b{}")
    never_reported(monitor)
    edit(top, "b{}")
    assert str(top) in reported_soon(monitor, top)


def test_tracked_directory_created_after_start_is_watched(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    monitor = tracking(new_monitor, "templates/", tmp_path)
    new = write(tmp_path / "templates" / "index.html", "<p>")
    assert str(new) in reported_soon(monitor, new)


def test_two_trees_over_one_directory_each_watch_their_files(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    """A ``track`` glob and a framework's template directory inside it, say."""
    view = write(tmp_path / "pages" / "views.py", "A = 1\n")
    template = write(tmp_path / "pages" / "templates" / "home.html", "<p>")
    monitor = tracking(new_monitor, "**/*.py", tmp_path)
    monitor.add_tree(glob_tree(str(tmp_path / "pages" / "templates"), "**/*"))
    monitor.poll()
    assert len(monitor) == 2

    edit(template, "<div>")
    assert reported_soon(monitor, template) == {str(template)}
    new = write(tmp_path / "pages" / "templates" / "new.html", "<p>")
    assert reported_soon(monitor, new) == {str(new)}
    edit(view, "A = 2\n")
    assert reported_soon(monitor, view) == {str(view)}
    write(tmp_path / "pages" / "notes.txt", "matched by neither tree")
    never_reported(monitor)


def test_two_globs_over_one_directory_each_count(new_monitor: MakeMonitor, tmp_path: Path) -> None:
    data = tmp_path / "data"
    write(data / "a.json", "{}")
    write(data / "a.keep", "1")
    monitor = new_monitor()
    monitor.add_tree(glob_tree(str(data), "*.json"))
    monitor.add_tree(glob_tree(str(data), "*.keep"))
    monitor.poll()
    assert len(monitor) == 2
    new = write(data / "b.keep", "1")
    assert reported_soon(monitor, new) == {str(new)}


def test_a_file_added_twice_before_its_first_poll_is_counted_once(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    template = write(tmp_path / "templates" / "a.html", "<p>")
    monitor = new_monitor()
    monitor.add_tree(glob_tree(str(tmp_path / "templates"), "**/*"))
    monitor.add_files([str(template), str(template)])
    assert len(monitor) == 1


# -- the start-up baseline -------------------------------------------------------


def first_poll(new_monitor: MakeMonitor, path: Path, age: float) -> Monitor:
    """Save ``path`` ``age`` seconds ago; watch it from a process that started 10 s ago."""
    write(path, "A = 1\n", age=age)
    monitor = new_monitor(start_ns=time.time_ns() - 10 * 10**9)
    monitor.add_files([str(path)])
    return monitor


def test_file_saved_after_process_start_counts_on_first_poll(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    path = tmp_path / "a.py"
    assert reported_soon(first_poll(new_monitor, path, age=5), path) == {str(path)}


def test_file_saved_before_process_start_does_not_count(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    never_reported(first_poll(new_monitor, tmp_path / "a.py", age=20))


def test_file_with_a_far_future_mtime_does_not_count_at_start(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    never_reported(first_poll(new_monitor, tmp_path / "a.py", age=-86400))  # a day ahead


def test_file_in_a_tracked_directory_saved_after_start_counts_on_first_poll(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    old = write(tmp_path / "templates" / "old.html", "<p>", age=20)
    new = write(tmp_path / "templates" / "new.html", "<p>", age=5)
    monitor = new_monitor(start_ns=time.time_ns() - 10 * 10**9)
    tree = parse_track("templates/", str(tmp_path))
    assert not isinstance(tree, str)
    monitor.add_tree(tree)
    seen = reported_soon(monitor, new)
    assert str(new) in seen
    assert str(old) not in seen


def test_monitor_counts_the_files_it_watches(new_monitor: MakeMonitor, tmp_path: Path) -> None:
    files = [write(tmp_path / f"m{i}.py") for i in range(3)]
    write(tmp_path / "templates" / "a.html")
    write(tmp_path / "templates" / "b.html")
    monitor = watching(new_monitor, *files)
    tree = parse_track("templates/", str(tmp_path))
    assert not isinstance(tree, str)
    monitor.add_tree(tree)
    monitor.poll()
    assert len(monitor) == 5


def test_symlink_loop_in_a_tracked_directory_is_watched_once(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    index = write(tmp_path / "templates" / "index.html", "<p>")
    (tmp_path / "templates" / "self").symlink_to(".")
    (tmp_path / "templates" / "also_self").symlink_to(".")
    (tmp_path / "templates" / "sub").mkdir()
    (tmp_path / "templates" / "sub" / "up").symlink_to("..")
    (tmp_path / "templates" / "knot").symlink_to("knot")  # ELOOP on stat
    monitor = tracking(new_monitor, "templates/", tmp_path)
    assert len(monitor) <= 2  # index.html (and perhaps the unreadable "knot")
    edit(index, "<div>")
    assert reported_soon(monitor, index) == {str(index)}
    new = write(tmp_path / "templates" / "sub" / "new.html", "<p>")
    assert reported_soon(monitor, new) == {str(new)}


# -- trees: symlinks and the bound -----------------------------------------------


def test_directories_linking_to_each_other_are_walked_once_each(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    # 10 files, 3 links from each directory to every later one: 349,525 paths by name.
    files = fan_out_tree(tmp_path / "site")
    (tmp_path / "site" / "d9" / "back").symlink_to("../d0")  # and a cycle
    monitor = tracking(new_monitor, "site/", tmp_path)
    assert len(monitor) == 10
    edit(files[5], "changed\n")
    assert reported_soon(monitor, files[5]) == {str(files[5])}  # by its real path


def test_links_planted_at_run_time_into_walked_directories_add_nothing(
    new_monitor: MakeMonitor, tmp_path: Path
) -> None:
    files = [write(tmp_path / "site" / f"d{i}" / f"f{i}.txt", "x") for i in range(10)]
    monitor = tracking(new_monitor, "site/", tmp_path)
    for i in range(10):
        for j in range(10):
            (tmp_path / "site" / f"d{i}" / f"link{j}").symlink_to(f"../d{j}")
    new = write(tmp_path / "site" / "d3" / "new.txt", "y", age=0)
    assert reported_soon(monitor, new) == {str(new)}
    never_reported(monitor)
    assert len(monitor) == 11
    edit(files[0], "z")
    assert reported_soon(monitor, files[0]) == {str(files[0])}


def test_a_big_tree_linked_at_run_time_is_listed_a_step_per_check(
    new_monitor: MakeMonitor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    walking_at_most(monkeypatch, 30)
    for d in range(20):
        for f in range(10):
            write(tmp_path / "big" / f"d{d}" / f"f{f}.txt")
    write(tmp_path / "site" / "index.html")
    monitor = tracking(new_monitor, "site/", tmp_path)
    (tmp_path / "site" / "big").symlink_to(tmp_path / "big")
    sizes = [len(monitor)]

    def grown_by_steps() -> bool:
        monitor.poll()
        sizes.append(len(monitor))
        # A step ends with the directory that crossed it: at most 30 + 10 files.
        assert sizes[-1] - sizes[-2] <= 40, sizes
        return sizes[-1] == 1 + 200

    wait_until(grown_by_steps, describe=lambda: str(sizes), poll=0)
    assert len(sizes) > 5, sizes  # over several checks, not in one


def test_tracking_stops_at_the_bound_with_one_warning(
    new_monitor: MakeMonitor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="reloadmw")
    tracking_at_most(monkeypatch, 100)
    files = [write(tmp_path / "big" / f"d{d}" / f"f{f}.txt") for d in range(30) for f in range(10)]
    monitor = tracking(new_monitor, "big/", tmp_path)
    assert 50 <= len(monitor) <= 100  # files, with the directories: 100
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, caplog.text
    assert "MAX_TRACKED" in warnings[0]
    assert f"pid={os.getpid()}" in warnings[0]
    late = write(tmp_path / "big" / "late" / "new.txt", age=0)
    for f in files:
        edit(f, "edited")
    seen: set[str] = set()

    def watched_ones_reported() -> bool:
        seen.update(monitor.poll())
        return len(seen) == len(monitor)

    wait_until(watched_ones_reported, describe=lambda: f"{len(seen)} of {len(monitor)}")
    assert str(late) not in seen
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_tracking_the_filesystem_root_starts_bounded(
    new_monitor: MakeMonitor, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reloadmw")
    tracking_at_most(monkeypatch, 20_000)
    monitor = new_monitor()
    tree = parse_track("/", "/srv")
    assert not isinstance(tree, str)
    monitor.add_tree(tree)
    monitor.poll()
    assert 0 < len(monitor) <= 20_000
    assert caplog.text.count("MAX_TRACKED") == 1


def test_the_detection_page_gives_the_bound_and_the_step_the_code_uses() -> None:
    page = (REPO / "docs" / "detection.rst").read_text()
    assert f"``reloadmw.watch.trees.MAX_TRACKED`` ({MAX_TRACKED:,})" in page
    assert f"``reloadmw.watch.trees.WALK_STEP`` entries ({WALK_STEP:,})" in page
