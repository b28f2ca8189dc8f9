"""The process start time behind the start-up baseline and gunicorn's --preload check."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from reloadmw.watch import start_time as startup

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
    assert baseline <= time.time_ns()
