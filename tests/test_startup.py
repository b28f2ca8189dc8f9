"""The process start time behind the start-up baseline and gunicorn's --preload check."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reloadmw import clocks
from reloadmw.clocks import boot_ns
from reloadmw.watch import start_time as startup
from reloadmw.watch.start_time import EXEC_START_ENV

REPO = Path(__file__).resolve().parent.parent

# -S: no site-packages, so reloadmw is imported as soon after the start as can be.
FRESH = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from reloadmw.watch.start_time import imported_before_start
print(imported_before_start())
"""


def test_a_fresh_process_did_not_import_before_it_started() -> None:
    for _ in range(5):
        result = subprocess.run(
            [sys.executable, "-S", "-c", FRESH], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "False"


def test_a_child_forked_after_the_import_imported_before_it_started() -> None:
    time.sleep(0.05)  # more than a clock tick between this import and the fork
    pid = os.fork()
    if pid == 0:  # the child: answer through the exit status
        os._exit(0 if startup.imported_before_start() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_baseline_is_never_before_the_process_started() -> None:
    earliest = startup._start_from_proc(latest=False)
    baseline = startup._start_from_proc()

    assert 0 < baseline - earliest <= 1e9 / os.sysconf("SC_CLK_TCK") + 1e6
    assert baseline <= boot_ns()


def stepped_wall_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> Callable[[], int]:
    """Step the wall clock this process reads ``seconds`` ahead, as NTP or a VM's host may."""
    wall = time.time_ns
    stepped = lambda: wall() + int(seconds * 1e9)  # noqa: E731
    monkeypatch.setattr(time, "time_ns", stepped)
    return stepped


def test_a_step_of_the_wall_clock_moves_neither_the_start_nor_the_preload_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(EXEC_START_ENV, raising=False)
    monkeypatch.delenv("UWSGI_RELOADS", raising=False)
    before = startup.process_start_ns()

    stepped_wall_clock(monkeypatch, 10)

    # Files saved from now on are dated 10 s ahead: the start must stay where it was.
    assert startup.process_start_ns() == before <= startup._IMPORT_NS
    assert not startup.imported_before_start()


def test_a_child_forked_after_a_step_puts_its_start_on_the_stepped_wall_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(EXEC_START_ENV, raising=False)
    monkeypatch.delenv("UWSGI_RELOADS", raising=False)
    stepped = stepped_wall_clock(monkeypatch, 10)
    tick = 10**9 // os.sysconf("SC_CLK_TCK")

    forked_after = stepped()
    pid = os.fork()
    if pid == 0:  # the child dates files with the stepped clock: its start must be on it too
        start = startup.process_start_ns()
        os._exit(0 if forked_after - tick <= start <= stepped() + tick else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


PAUSE_NS = 10_000_000


@pytest.mark.parametrize("wall_read_at", [0, PAUSE_NS], ids=["before the pause", "after it"])
def test_a_pause_between_reading_the_clocks_errs_by_half_of_it_at_most(
    monkeypatch: pytest.MonkeyPatch, wall_read_at: int
) -> None:
    # The boot clock reads 0, then 10 ms: the thread was paused between its two readings.
    readings = iter([0, PAUSE_NS])
    monkeypatch.setattr(clocks, "boot_ns", lambda: next(readings))
    truth = 5 * 10**18  # the wall clock's time at boot
    monkeypatch.setattr(time, "time_ns", lambda: truth + wall_read_at)

    assert abs(clocks.wall_minus_boot_ns() - truth) <= PAUSE_NS // 2
