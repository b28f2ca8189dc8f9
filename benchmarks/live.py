"""Save to seen: an open page in a real browser follows a save, under Apache + mod_wsgi.

For examples/hello and the ``startproject`` site of ``endtoend.py``, served
by Apache + mod_wsgi daemon mode (2 processes x 4 threads, preloaded, with
``reload_required``) with ``live_reload=True`` and the default ``quiet``
(0.2 s), this prints the median (min-max) of:

- save to seen: from saving a module to the open page (Chromium, opened
  once, never navigated) showing the new text, with no click;
- press reload: from the same save to the first response with the new text
  when requests come back to back, as a person pressing reload at once would
  get it (no browser; the same server);
- cold start: from starting Apache to the first response;

and a PASS/MISS line for the target: save to seen at most ``quiet`` + one
poll period (1 s) + the cold start + 0.3 s.

Run by ``run.py``, or alone: ``benchmarks/.venv/bin/python benchmarks/live.py``.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import endtoend  # noqa: E402
from endtoend import App, Django, Hello, median  # noqa: E402

from tests.browser import chromium  # noqa: E402
from tests.rig import ApacheServer  # noqa: E402

REPEATS = 9
COLD_STARTS = 3
LIVE = "interval=0.5, live_reload=True"
QUIET = 0.2
PERIOD = 1.0
SLACK = 0.3
SHOWN = "() => document.body ? document.body.innerText : ''"


class LiveHello(Hello):
    settings = LIVE


class LiveDjango(Django):
    settings = LIVE


def seen(page: object, marker: str, deadline: float) -> float:
    """Wait until the page shows ``marker``; return when."""
    from playwright.sync_api import Error

    while time.monotonic() < deadline:
        try:
            if marker in page.evaluate(SHOWN):  # type: ignore[attr-defined]
                return time.monotonic()
        except Error:
            pass  # reloading
        time.sleep(0.01)
    raise SystemExit(f"the page never showed {marker!r}")


def cold_start(app: App) -> float:
    server = ApacheServer(app.script, python_path=app.python_path)
    try:
        t0 = time.monotonic()
        server.start()
        return endtoend.first_answer(server.port, endtoend.showing("")) - t0
    finally:
        server.stop()


def measure(app: App) -> dict[str, list[float]]:
    cold = [cold_start(app) for _ in range(COLD_STARTS)]
    live: list[float] = []
    pressed: list[float] = []
    server = ApacheServer(app.script, python_path=app.python_path)
    try:
        server.start()
        endtoend.first_answer(server.port, endtoend.showing(""))
        with chromium() as browser:
            page = browser.new_page()
            page.goto(server.url)
            for _ in range(REPEATS):
                time.sleep(1.5 + random.random())  # any phase against the polls and Apache
                t0 = time.monotonic()
                marker = app.edit()
                live.append(seen(page, marker, t0 + endtoend.DEADLINE) - t0)
            for _ in range(REPEATS):
                time.sleep(1.5 + random.random())
                t0 = time.monotonic()
                marker = app.edit()
                pressed.append(endtoend.first_answer(server.port, endtoend.showing(marker)) - t0)
                seen(page, marker, t0 + endtoend.DEADLINE)  # the page too, before the next save
    except BaseException:
        print(server.logs(), file=sys.stderr)
        raise
    finally:
        server.stop()
    return {
        "save to seen, open page in Chromium": live,
        "press reload: first new response": pressed,
        "cold start (Apache start to first response)": cold,
    }


def main() -> None:
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    print(
        "live reload under Apache + mod_wsgi daemon mode (2 processes, the hook), "
        f"{LIVE}, quiet={QUIET}: median (min-max)"
    )
    for app, results in endtoend.measured((LiveHello, LiveDjango), measure):
        cold = median(results["cold start (Apache start to first response)"])
        target = QUIET + PERIOD + cold + SLACK
        got = results["save to seen, open page in Chromium"]
        for label, value in (("median", median(got)), ("slowest", max(got))):
            verdict = "PASS" if value <= target else "MISS"
            print(
                f"{verdict}  {app.name}: save to seen ({label}) <= quiet + period + cold start "
                f"+ 0.3 s = {target * 1e3:.0f} ms: {value * 1e3:.0f} ms"
            )


if __name__ == "__main__":
    main()
