"""A real browser for the UI tests: Playwright driving Debian's Chromium (never a browser
Playwright downloads). Skipped where Chromium is missing, failed instead under
``CLOSEDLOOP_REQUIRE_CHROMIUM=1`` (CI installs it), as the collector tests do."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from _support.tools import missing

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium for the block; skip (or fail) without it or without Playwright."""
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing: apt-get install chromium", "CLOSEDLOOP_REQUIRE_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright is not installed (the dev extra has it)", "CLOSEDLOOP_REQUIRE_CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()
