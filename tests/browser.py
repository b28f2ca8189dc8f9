"""A real browser for the live-reload tests: Debian's chromium, driven by Playwright.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium``
(``scripts/bootstrap`` installs it) headless, with a new empty profile, and
with the flags Chromium needs as root and without a network beyond loopback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium() -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh profile, closed (and the profile removed) at the end."""
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise AssertionError(f"{CHROMIUM} is missing; run scripts/bootstrap (apt: chromium)")
    profile = tempfile.mkdtemp(prefix="reloadmw-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=FLAGS,
                viewport={"width": 1000, "height": 560},
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
