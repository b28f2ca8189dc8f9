"""reloadmw against the physical floor and its peers, in one run; prints one table.

Usage (from the repository root)::

    benchmarks/run                      # makes benchmarks/.venv with the peers first
    benchmarks/run --sizes 1000 --rounds 5 --no-apache

Each size N runs in a fresh process (``scans.py``) whose ``sys.modules`` holds
the N generated modules, so that every reloader sees the same app. Inside it,
every candidate is timed once per round, round-robin, and the table gives
medians, and ratios to the floor taken round by round. Not part of the test
suite: the targets print PASS or MISS, they do not fail anything. The output
is also written to ``benchmarks/results/latest.rst`` and a dated copy (unless
``--no-save``), which ``docs/performance.rst`` includes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import per_request  # noqa: E402
import results  # noqa: E402

SIZES = (1000, 5000, 20000)
ROUNDS = {1000: 21, 5000: 11, 20000: 7}

SCAN_ROWS = [
    ("floor", "floor: os.stat loop over a prebuilt list"),
    ("reloadmw stat", "reloadmw stat check, nothing changed"),
    ("reloadmw stat after 100 imports", "reloadmw stat check after 100 new imports"),
    ("reloadmw inotify", "reloadmw inotify check, nothing changed"),
    ("reloadmw inotify after 100 imports", "reloadmw inotify check after 100 new imports"),
    ("inotify watch set-up", "inotify watch set-up (all files)"),
    ("floor polled", "floor: os.stat over the M files on NFS"),
    ("reloadmw auto", "reloadmw auto check: N-M inotify, M on NFS"),
    ("hupper monitor", "hupper polling monitor pass"),
    ("hupper worker walk", "+ hupper worker sys.modules walk"),
    ("hupper worker walk after 100 imports", "+ hupper walk after 100 new imports"),
    ("django tick", "django StatReloader.tick"),
    ("django tick after 100 imports", "django tick after 100 new imports"),
    ("werkzeug run_step", "werkzeug StatReloaderLoop.run_step"),
]


def scan(n: int, rounds: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, os.path.join(HERE, "scans.py"), str(n), str(rounds)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"scans.py {n} failed with status {done.returncode}:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def idle_cost() -> dict[str, float]:
    """Threads and CPU time of this process over one idle second, with a middleware."""
    threads = threading.active_count()
    app = per_request.ReloadMiddleware(per_request.hello, interval=0, restart=lambda r: None)
    app({}, per_request.start_response)
    cpu = time.process_time()
    time.sleep(1.0)
    return {
        "threads added": threading.active_count() - threads,
        "cpu seconds in an idle second": time.process_time() - cpu,
    }


def fmt_seconds(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f} us"
    return f"{seconds * 1e9:.0f} ns"


def print_scans(results: list[dict[str, Any]]) -> None:
    sizes = [r["n"] for r in results]
    head = f"{'per full check (median; x = ratio to the floor)':48s}" + "".join(
        f"{'N=' + str(n):>24s}" for n in sizes
    )
    print(head)
    print("-" * len(head))
    for key, label in SCAN_ROWS:
        cells = "".join(
            f"{fmt_seconds(r['seconds'][key]):>13s} {r['to floor'][key]:9.4f}x" for r in results
        )
        print(f"{label:48s}{cells}")
    watched = "".join(
        f"{str(r['watched']['first']) + '..' + str(r['watched']['last']):>24s}" for r in results
    )
    print(f"{'files watched (checks..after all imports)':48s}{watched}")
    polled = "".join(f"{'M=' + str(r['polled']):>24s}" for r in results)
    print(f"{'files the auto check finds on NFS':48s}{polled}")
    for backend in ("stat", "inotify"):
        cells = "".join(f"{r['memory per file'][backend]:>22.0f} B" for r in results)
        print(f"{'memory per watched file, ' + backend:48s}{cells}")


def print_requests(medians: dict[str, dict[str, float]]) -> None:
    print()
    print(f"{'per request, no check due (median)':48s}{'python loop':>24s}{'server call':>24s}")
    for name in medians["python loop"]:
        cells = ""
        for style in ("python loop", "server call"):
            seconds = medians[style][name]
            ratio = seconds / medians[style]["bare app"]
            cells += f"{fmt_seconds(seconds):>13s} {ratio:9.2f}x"
        print(f"{name:48s}{cells}")


def targets(
    results: list[dict[str, Any]], requests: dict[str, dict[str, float]], idle: dict[str, float]
) -> list[tuple[bool, str]]:
    by_n = {r["n"]: r for r in results}
    checks: list[tuple[bool, str]] = []
    for n, r in by_n.items():
        ratio = r["to floor"]
        checks.append(
            (
                ratio["reloadmw stat"] <= 1.2,
                f"stat check <= 1.2x floor at N={n}: {ratio['reloadmw stat']:.2f}x",
            )
        )
        after = ratio["reloadmw stat after 100 imports"]
        checks.append(
            (after <= 1.5, f"stat check after 100 imports <= 1.5x at N={n}: {after:.2f}x")
        )
        inotify = r["seconds"]["reloadmw inotify"]
        checks.append((inotify <= 5e-6, f"inotify check <= 5 us at N={n}: {fmt_seconds(inotify)}"))
        auto = r["auto to its polled floor"]
        checks.append(
            (
                auto <= 1.3,
                f"auto check <= 1.3x a stat loop over its M={r['polled']} polled files at "
                f"N={n}: {auto:.2f}x",
            )
        )
        setup = ratio["inotify watch set-up"]
        checks.append((setup <= 0.3, f"watch set-up <= 0.3x one floor scan at N={n}: {setup:.2f}x"))
        for backend in ("stat", "inotify"):
            memory = r["memory per file"][backend]
            checks.append(
                (memory <= 512, f"memory <= 512 B per file ({backend}) at N={n}: {memory:.0f} B")
            )
    if len(by_n) > 1:
        small, large = by_n[min(by_n)], by_n[max(by_n)]
        flat = large["seconds"]["reloadmw inotify"] / small["seconds"]["reloadmw inotify"]
        checks.append(
            (flat <= 1.5, f"inotify check flat: N={max(by_n)} is {flat:.2f}x N={min(by_n)}")
        )
    for style in ("python loop", "server call"):
        m = requests[style]
        fast = m["ReloadMiddleware"] / m["bare app"]
        gate = m["class gate"] / m["bare app"]
        checks.append((fast <= 2.0, f"fast path <= 2.0x bare app ({style}): {fast:.2f}x"))
        checks.append(
            (fast < gate, f"fast path beats the class gate ({style}): {fast:.2f}x < {gate:.2f}x")
        )
    checks.append(
        (
            idle["threads added"] == 0 and idle["cpu seconds in an idle second"] < 0.005,
            f"no thread, no CPU when idle: {idle['threads added']} threads added, "
            f"{idle['cpu seconds in an idle second'] * 1e3:.2f} ms CPU in 1 s",
        )
    )
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--rounds", type=int, help="rounds per size (default: 21, 11, 7)")
    parser.add_argument("--no-apache", action="store_true", help="skip the end-to-end run")
    parser.add_argument(
        "--no-save", action="store_true", help="do not write benchmarks/results/*.rst"
    )
    args = parser.parse_args()
    started = time.monotonic()
    recorder = results.Recorder(sys.stdout)
    sys.stdout = recorder
    try:
        run(args)
    finally:
        sys.stdout = recorder.out
    if not args.no_save:
        command = ["benchmarks/run", *sys.argv[1:]]
        path = results.write(recorder.kept.getvalue(), command, time.monotonic() - started)
        print(f"written to {os.path.relpath(path)} and latest.rst beside it")


def run(args: argparse.Namespace) -> None:
    print(
        f"reloadmw benchmark: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}, {per_request.IMPLEMENTATION} request gate",
        flush=True,
    )
    by_size = []
    for n in args.sizes:
        print(f"  N={n} ...", flush=True)
        by_size.append(scan(n, args.rounds or ROUNDS.get(n, 5)))
    requests = per_request.measure(rounds=args.rounds or 31, n=100_000)
    idle = idle_cost()
    print()
    print_scans(by_size)
    print_requests(requests)
    print()
    for ok, text in targets(by_size, requests, idle):
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    if not args.no_apache:
        import endtoend
        import live

        print()
        endtoend.main()
        print()
        live.main()


if __name__ == "__main__":
    main()
