"""The crate page's route plot and orientation in headless Chromium: real board process, real influxd."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from board_helpers import RunningBoard
from browser_helpers import chromium, shot, signed_in
from playwright.sync_api import Page, expect
from track_points import start_track_board

from cli.services import InfluxDB, Mosquitto

pytestmark = pytest.mark.integration

CRATE = f"R{os.getpid()}"
DATABASE = f"route{os.getpid()}"


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto, influxdb: InfluxDB) -> Iterator[RunningBoard]:
    """One board for this module, on a database holding the routes of CRATE and its two profiled twins."""
    running = start_track_board(tmp_path_factory.mktemp("board"), mosquitto.port, influxdb.url, DATABASE, CRATE)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def page(board: RunningBoard) -> Iterator[Page]:
    """A signed-in page in Debian's Chromium."""
    with chromium() as browser, signed_in(browser, board) as shown:
        yield shown


def test_crate_page_plots_the_route_in_two_stretches_and_says_it_is_tipped(
    page: Page, board: RunningBoard, tmp_path: Path
) -> None:
    """The route is an inline SVG with one polyline per fixed stretch (3 and 2 points), and the tilt reads tipped."""
    page.goto(f"{board.url}/crates/{CRATE}")
    expect(page.locator("#track-status")).to_contain_text("5 fixes in 2 stretches", timeout=5000)
    segments = page.locator("#track svg polyline.track-seg")
    expect(segments).to_have_count(2)
    counts = segments.evaluate_all("(ps) => ps.map((p) => p.points.numberOfItems)")
    assert counts == [3, 2]
    expect(page.locator("#track .track-start")).to_have_count(1)
    expect(page.locator("#track .track-last")).to_contain_text("last fix")
    expect(page.locator("#stance-text")).to_contain_text("Tilt 42.5° from vertical: TIPPED (beyond 30°)")
    expect(page.locator("#shock-text")).to_contain_text("Last shock 3.40 g")
    shot(page, tmp_path, "crate-route.png")


def test_the_tilt_wording_comes_from_the_crates_profile(page: Page, board: RunningBoard) -> None:
    """The same 42.5° reads upright against a profile allowing 45°, and unjudged under one without a tilt rule."""
    page.goto(f"{board.url}/crates/{CRATE}-45")
    expect(page.locator("#stance-text")).to_contain_text("Tilt 42.5° from vertical: upright (within 45°)", timeout=5000)
    page.goto(f"{board.url}/crates/{CRATE}-fridge")
    expect(page.locator("#stance-text")).to_contain_text(
        "Tilt 42.5° from vertical: its profile sets no tilt limit", timeout=5000
    )


def test_crate_page_without_position_says_none_was_reported(page: Page, board: RunningBoard) -> None:
    """A crate that never reported a position or tilt gets words, not an empty plot."""
    page.goto(f"{board.url}/crates/{CRATE}-none")
    expect(page.locator("#track-status")).to_contain_text("No position reported in the last", timeout=5000)
    expect(page.locator("#track svg")).to_have_count(0)
    expect(page.locator("#orientation")).to_contain_text("No orientation reported.")
