"""The fast exit of a daemon process that reloadmw restarts (reloadmw/restart/fast_exit.py)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

#: A process that looks like a mod_wsgi daemon to reloadmw, arms the fast exit and exits.
SCRIPT = """\
import atexit, sys, types
sys.modules["mod_wsgi"] = types.SimpleNamespace(process_group={group!r})
from reloadmw.restart.fast_exit import exit_after_atexit_handlers

class Teardown:
    def __del__(self):
        print("module teardown ran", flush=True)

keep = Teardown()
unflushed = open(sys.argv[1], "w")  # left open, its text still in the buffer
unflushed.write("written before the exit\\n")
atexit.register(lambda: print("the app's atexit handler ran", flush=True))
exit_after_atexit_handlers()
{later}
sys.exit({status})
"""
LATER = 'atexit.register(lambda: print("a later handler ran", flush=True))'


def run(group: str, status: int, later: str = "") -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(SCRIPT.format(group=group, status=status, later=later))
    with tempfile.TemporaryDirectory() as directory:
        left_open = Path(directory, "left-open.txt")
        done = subprocess.run(
            [sys.executable, "-c", code, str(left_open)], capture_output=True, text=True
        )
        assert left_open.read_text() == "written before the exit\n", done.stderr
    return done


def test_a_daemon_process_ends_after_its_atexit_handlers_without_module_teardown() -> None:
    done = run("app", 0)
    assert done.stdout.splitlines() == ["the app's atexit handler ran"]
    assert done.returncode == 0


def test_with_a_handler_registered_after_it_every_handler_runs_once_as_usual() -> None:
    done = run("app", 0, LATER)
    assert done.stdout.splitlines() == [
        "a later handler ran",
        "the app's atexit handler ran",
        "module teardown ran",
    ]


def test_outside_a_daemon_process_nothing_changes_and_the_exit_status_stays() -> None:
    done = run("", 3)
    assert "module teardown ran" in done.stdout
    assert done.returncode == 3
