"""The board in a real browser: Debian's Chromium driven by Playwright, signed in, and screenshots to look at."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from board_helpers import PASSWORD, RunningBoard
from playwright.sync_api import Browser, Page, expect, sync_playwright

# Debian's package, never a browser Playwright downloads
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots land here for a person to look at (make test keeps them with pytest's temp dirs).
SHOTS_ENV = "COLDCHAIN_BOARD_SHOTS"


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless (no downloaded browser)."""
    assert Path(CHROMIUM).exists(), "chromium not found: apt-get install chromium chromium-driver"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@contextmanager
def signed_in(browser: Browser, board: RunningBoard, height: int = 900) -> Iterator[Page]:
    """A page of ``board`` signed in as ``ops``, showing the live board."""
    context = browser.new_context(viewport={"width": 1400, "height": height})
    page = context.new_page()
    page.goto(f"{board.url}/")
    page.fill("input[name=user]", "ops")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#live")).to_have_text("live", timeout=5000)
    yield page
    context.close()


def shot(page: Page, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot, in $COLDCHAIN_BOARD_SHOTS when set (else the test's temp dir)."""
    directory = Path(os.environ.get(SHOTS_ENV, tmp_path))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    page.screenshot(path=str(path), full_page=True)
    return path
