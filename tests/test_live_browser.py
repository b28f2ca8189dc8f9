"""Live reload in a real browser (Debian's chromium) against real servers.

Each tab opens the page once and never navigates: every change of what it
shows comes from the script reloading it. Against Apache + mod_wsgi daemon
mode (2 processes x 4 threads, preloaded, with ``reload_required``) and
gunicorn (2 gthread workers), serving ``examples/hello`` as it is:

- a save changes both open tabs, each reloaded exactly once;
- a save that does not compile shows the overlay with the file and line;
- the fix clears it and shows the new text;
- a save that compiles but breaks the import shows reloadmw's 500 page with
  the error; the next good save brings the page back.

With ``RELOADMW_SCREENSHOTS=<dir>`` the overlay's screenshot is kept there
(``docs/_static/overlay.png`` is one).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser import chromium
from tests.helpers import edit, settle, wait_until
from tests.rig import (
    RESTART_TIMEOUT,
    ServerProcess,
    StartApache,
    StartServer,
    backdate,
    copied_example,
    gunicorn,
)

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.server

#: Counts the documents a tab loaded, across its reloads (sessionStorage is per tab).
COUNT_LOADS = (
    "sessionStorage.setItem('loads', String(Number(sessionStorage.getItem('loads') || 0) + 1))"
)
SHOWN = "() => { const h = document.querySelector('h1'); return h ? h.textContent : null; }"
OVERLAY = (
    "() => { const o = document.getElementById('reloadmw-overlay'); return o && o.innerText; }"
)
BODY = "() => document.body ? document.body.innerText : ''"


class Tab:
    """One browser tab on the page, opened once."""

    def __init__(self, browser: BrowserContext, url: str) -> None:
        self.page: Page = browser.new_page()
        self.page.add_init_script(COUNT_LOADS)
        self.page.goto(url)

    def read(self, script: str) -> Any:
        """``script``'s value in the current document; None while a reload is under way."""
        from playwright.sync_api import Error

        try:
            return self.page.evaluate(script)
        except Error:
            return None

    @property
    def loads(self) -> int:
        return int(self.read("() => sessionStorage.getItem('loads')") or 0)


def until_all(tabs: list[Tab], shown: Callable[[Tab], bool], server: ServerProcess) -> float:
    """Wait until every tab passes ``shown``; return the seconds it took."""
    started = time.monotonic()
    wait_until(
        lambda: all(shown(tab) for tab in tabs),
        RESTART_TIMEOUT,
        lambda: f"tabs show {[tab.read(BODY) for tab in tabs]}\n{server.logs()}",
        poll=0.02,
    )
    return time.monotonic() - started


def follow_saves(tabs: list[Tab], app: Path, server: ServerProcess) -> dict[str, float]:
    """Save, break, fix, break the import and fix again; the open tabs follow each step."""
    greeting = app / "greeting.py"
    took: dict[str, float] = {}
    for tab in tabs:
        assert tab.read(SHOWN) and tab.loads == 1

    edit(greeting, 'TEXT = "Saved once"\n')
    took["save"] = until_all(tabs, lambda t: t.read(SHOWN) == "Saved once", server)
    # Once each; under gunicorn an old worker still accepting during the swap may take
    # the reload, and its page (which says it is outdated) reloads again (docs: Limits;
    # test_live_servers checks that each such page is old code marked outdated).
    reloads = [t.loads - 1 for t in tabs]
    assert all(n == 1 for n in reloads) or (server.name == "gunicorn" and min(reloads) >= 1)
    settle(lambda: [t.loads - 1 for t in tabs] == reloads, 2.0, lambda: server.logs())

    edit(greeting, 'TEXT = "not closed\n')
    took["syntax error"] = until_all(
        tabs, lambda t: f"{greeting}:1" in (t.read(OVERLAY) or ""), server
    )
    assert all(t.read(SHOWN) == "Saved once" for t in tabs)  # the old code still serves
    keep_screenshot(tabs[0])

    edit(greeting, 'TEXT = "Fixed"\n')
    took["fix"] = until_all(
        tabs, lambda t: t.read(SHOWN) == "Fixed" and not t.read(OVERLAY), server
    )

    edit(greeting, 'GREETING = "renamed"\n')  # compiles; hello_app's import of TEXT fails
    took["import error"] = until_all(
        tabs, lambda t: "ImportError: cannot import name 'TEXT'" in (t.read(BODY) or ""), server
    )
    edit(greeting, 'TEXT = "Back"\n')
    took["fixed import"] = until_all(tabs, lambda t: t.read(SHOWN) == "Back", server)
    print(f"{server.name}: save to seen in the browser, seconds: {took}")
    return took


def keep_screenshot(tab: Tab) -> None:
    directory = os.environ.get("RELOADMW_SCREENSHOTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        tab.page.screenshot(path=str(Path(directory) / "overlay.png"))


def test_open_tabs_follow_saves_under_apache_daemon_mode(start_apache: StartApache) -> None:
    with copied_example("hello") as hello:
        backdate(hello)
        server = start_apache(hello / "hello.wsgi")
        with chromium() as browser:
            tabs = [Tab(browser, server.url) for _ in range(2)]
            follow_saves(tabs, hello, server)


def test_open_tabs_follow_saves_under_gunicorn(start_server: StartServer) -> None:
    with copied_example("hello") as hello:
        shutil.copy(hello / "hello.wsgi", hello / "hello_wsgi.py")
        backdate(hello)
        server = start_server(gunicorn(hello, "hello_wsgi:application"))
        with chromium() as browser:
            tabs = [Tab(browser, server.url) for _ in range(2)]
            follow_saves(tabs, hello, server)
