"""Full checks at one size N, in a process of their own (its ``sys.modules`` is the app's).

Run as ``python scans.py N ROUNDS``: prints one JSON object of medians (seconds)
and memory figures. Every candidate is timed once per round, round-robin, so
that the machine's load falls on all of them alike.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if p not in ("", BENCH_DIR)]  # as an app's sys.path
sys.path.insert(0, BENCH_DIR)
import corpus  # noqa: E402
import peers  # noqa: E402

sys.path.remove(BENCH_DIR)

from reloadmw import ReloadMiddleware  # noqa: E402
from reloadmw.watch.auto import AutoMonitor  # noqa: E402
from reloadmw.watch.inotify import InotifyMonitor  # noqa: E402
from reloadmw.watch.patterns import DEFAULT_IGNORE, IgnoreRules  # noqa: E402

NEW_IMPORTS = 100
#: Rounds of "check after NEW_IMPORTS new imports", after the others.
AFTER_ROUNDS = 5
#: Calls per sample for checks that take microseconds.
FAST_REPEAT = 2000
#: The share of the package directories that the auto check finds on an NFS mount.
POLLED_SHARE = 0.1
#: Calls per sample for the auto check and its floor (M = N / 10 files: a fraction of a ms).
POLLED_REPEAT = 10
IGNORED = IgnoreRules(DEFAULT_IGNORE)
T = TypeVar("T")


def hello(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, world!"]


def middleware(backend: str) -> ReloadMiddleware:
    return ReloadMiddleware(hello, backend=backend, restart=lambda reason: None)


def timed(check: Callable[[], object], repeat: int = 1) -> float:
    """Seconds per call, with the garbage collector off (as timeit does)."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(repeat):
            check()
        return (time.perf_counter() - t0) / repeat
    finally:
        gc.enable()


def floor_scan(paths: list[str]) -> None:
    """The physical floor: ``os.stat`` over a prebuilt list."""
    stat = os.stat
    for path in paths:
        stat(path)


def watch_setup(paths: list[str]) -> float:
    """Seconds to open an inotify instance and add the watches for ``paths``.

    Closing it is left out: the kernel waits for an RCU grace period there,
    which is idle time, and a middleware never closes its monitor.
    """
    gc.collect()
    gc.disable()
    t0 = time.perf_counter()
    monitor = InotifyMonitor(time.time_ns(), IGNORED)
    monitor.add_files(paths)
    seconds = time.perf_counter() - t0
    gc.enable()
    monitor.close()
    return seconds


def auto_monitor(paths: list[str]) -> tuple[AutoMonitor, list[str]]:
    """The auto monitor over ``paths``, a tenth of their packages on NFS; and the polled files.

    The mount table is this process's with one more line per such directory,
    so nothing is mounted: the files are local, and the check stats them as
    it would on a share. The rest stays on inotify.
    """
    packages = sorted({os.path.dirname(p) for p in paths if "/pkg" in p})
    shared = set(packages[: max(1, round(len(packages) * POLLED_SHARE))])
    lines = "".join(
        f"{900000 + i} 1 0:999 / {directory} rw - nfs4 bench:/share rw\n"
        for i, directory in enumerate(sorted(shared))
    )
    real = Path("/proc/self/mountinfo").read_text()
    monitor = AutoMonitor(time.time_ns(), IGNORED, mountinfo=lambda: real + lines)
    monitor.add_files(paths)
    monitor.poll()
    polled = [p for p in paths if os.path.dirname(p) in shared]
    assert monitor.counts() == (len(paths) - len(polled), len(polled)), monitor.counts()
    return monitor, polled


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def watched(mw: ReloadMiddleware) -> list[str]:
    """The files ``mw`` stats on each check: the floor loops over exactly these."""
    return list(mw._scanner.monitor._table.stamps)  # type: ignore[attr-defined]


def run(n: int, rounds: int, root: Path) -> dict[str, Any]:
    files = corpus.Corpus(root, f"app{n}")
    corpus.import_all(files.write(n))
    stat_mw, inotify_mw = middleware("stat"), middleware("inotify")
    assert inotify_mw.check() == [] and stat_mw.check() == []
    paths = watched(stat_mw)
    auto, polled = auto_monitor(paths)
    hupper_pass, hupper_walk = peers.hupper_monitor()
    checks: dict[str, tuple[Callable[[], object], int]] = {
        "floor": (lambda: floor_scan(paths), 1),
        "floor polled": (lambda: floor_scan(polled), POLLED_REPEAT),
        "reloadmw auto": (auto.poll, POLLED_REPEAT),
        "reloadmw stat": (stat_mw.check, 1),
        "reloadmw inotify": (inotify_mw.check, FAST_REPEAT),
        "hupper monitor": (hupper_pass, 1),
        "hupper worker walk": (hupper_walk, 1),
        "django tick": (peers.django_tick(), 1),
        "werkzeug run_step": (peers.werkzeug_step(), 1),
    }
    # Each monitor's first check after the same NEW_IMPORTS fresh imports.
    after = {
        name: checks[name][0]
        for name in ("reloadmw stat", "reloadmw inotify", "hupper worker walk", "django tick")
    }
    times: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    polled_ratios: list[float] = []  # the auto check to a stat loop over its polled files

    def record(sample: dict[str, float], floor: float) -> None:
        for name, seconds in sample.items():
            times.setdefault(name, []).append(seconds)
            ratios.setdefault(name, []).append(seconds / floor)

    for r in range(rounds):  # nothing changed: N files
        sample = {name: timed(check, repeat) for name, (check, repeat) in rotated(checks, r)}
        sample["inotify watch set-up"] = watch_setup(paths)
        record(sample, sample["floor"])
        polled_ratios.append(sample["reloadmw auto"] / sample["floor polled"])
    first = len(paths)
    for r in range(AFTER_ROUNDS):  # the watched set grows by NEW_IMPORTS a round
        corpus.import_all(files.new_batch(NEW_IMPORTS))
        sample = {
            f"{name} after {NEW_IMPORTS} imports": timed(check) for name, check in rotated(after, r)
        }
        hupper_pass()  # the hupper monitor takes the new paths, untimed
        paths = watched(stat_mw)
        floor = timed(checks["floor"][0])
        record(sample, floor)
    return {
        "n": n,
        "watched": {"first": first, "last": len(paths)},
        "polled": len(polled),
        "auto to its polled floor": median(polled_ratios),
        "seconds": {name: median(values) for name, values in times.items()},
        "to floor": {name: median(values) for name, values in ratios.items()},
        "memory per file": {backend: memory_per_file(backend) for backend in ("stat", "inotify")},
    }


def rotated(candidates: dict[str, T], r: int) -> list[tuple[str, T]]:
    """The candidates, a different one first each round: none always gets a cold cache."""
    items = list(candidates.items())
    return items[r % len(items) :] + items[: r % len(items)]


def memory_per_file(backend: str) -> float:
    """Bytes allocated by a new middleware (paths, stamps, module names), per watched file."""
    middleware(backend).check()  # first-use caches (regexes, sysconfig) are not per file
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    mw = middleware(backend)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / len(mw._scanner.monitor)


def main() -> None:
    n, rounds = int(sys.argv[1]), int(sys.argv[2])
    with tempfile.TemporaryDirectory(prefix="reloadmw-bench-") as root:
        print(json.dumps(run(n, rounds, Path(root))))


if __name__ == "__main__":
    main()
