"""The group restart marker under clock steps (issue 13, defect 1): one restart per POST."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reloadmw.endpoint.marker import GenerationMarker
from reloadmw.endpoint.statedir import StateDir
from tests.helpers import marker_wall_clock, set_mtime

HOUR_NS = 3600 * 10**9


def marker(state: Path, start_ns: int) -> GenerationMarker:
    """The marker of the app ``app`` as a process that started at ``start_ns`` sees it."""
    return GenerationMarker(StateDir(str(state)), "app", start_ns)


def test_a_marker_in_the_future_restarts_no_fresh_process(tmp_path: Path) -> None:
    # A POST, then a backwards clock step (NTP, a VM snapshot restored): the
    # marker's mtime is an hour ahead of every process started from then on.
    bumper = marker(tmp_path / "state", start_ns=0)
    bumper.bump()
    set_mtime(Path(bumper.path), time.time_ns() + HOUR_NS)

    for _ in range(3):  # generation after generation of fresh processes
        fresh = marker(tmp_path / "state", start_ns=time.time_ns())
        assert not fresh.changed()
        assert not fresh.claim()


def test_after_a_marker_in_the_future_a_new_post_restarts_each_process_once(
    tmp_path: Path,
) -> None:
    bumper = marker(tmp_path / "state", start_ns=0)
    bumper.bump()
    set_mtime(Path(bumper.path), time.time_ns() + HOUR_NS)
    watcher = marker(tmp_path / "state", start_ns=time.time_ns())

    bumper.bump()  # the next POST

    assert watcher.claim()
    assert not watcher.claim()
    assert not marker(tmp_path / "state", start_ns=time.time_ns()).claim()
    assert os.stat(bumper.path).st_mtime_ns <= time.time_ns()  # back on the clock


def test_the_marker_is_written_through_descriptors_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bumper = marker(tmp_path / "state", start_ns=0)
    targets: list[object] = []
    utime = os.utime

    def recording(target: object, *args: object, **kwargs: object) -> None:
        targets.append(target)
        utime(target, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "utime", recording)
    bumper.bump()

    assert targets and all(isinstance(target, int) for target in targets)


Step = tuple[str, int]
steps = st.one_of(
    st.tuples(st.just("clock"), st.integers(-30 * 24 * HOUR_NS, 30 * 24 * HOUR_NS)),
    st.tuples(st.just("post"), st.integers(0, 2)),
    st.tuples(st.just("request"), st.integers(0, 2)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=st.lists(steps, max_size=25))
def test_no_sequence_of_clock_steps_restarts_a_process_twice_for_one_post(
    tmp_path_factory: pytest.TempPathFactory, history: list[Step]
) -> None:
    """Three processes of one app; POSTs, requests and wall-clock steps in any order.

    After a POST each process older than it restarts on its next request, once;
    a process started after the latest POST never restarts for it.
    """
    state = tmp_path_factory.mktemp("clock") / "state"
    with pytest.MonkeyPatch.context() as monkeypatch:
        offset = marker_wall_clock(monkeypatch)

        def fresh() -> GenerationMarker:
            return marker(state, start_ns=time.time_ns() + offset[0])

        processes = [fresh() for _ in range(3)]
        older_than_post = [False] * 3
        for kind, value in history:
            if kind == "clock":
                offset[0] += value
            elif kind == "post":
                processes[value].bump()
                processes[value] = fresh()  # it restarts itself after the 202
                older_than_post = [n != value for n in range(3)]
            else:
                restarts = processes[value].claim()
                assert restarts == older_than_post[value], (kind, value, older_than_post)
                if restarts:
                    processes[value] = fresh()
                    older_than_post[value] = False
