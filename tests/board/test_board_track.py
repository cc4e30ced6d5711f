"""The board's route and orientation endpoint against a real influxd."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from board_helpers import RunningBoard, api, sign_in
from track_points import start_track_board

from cli.services import InfluxDB, Mosquitto

pytestmark = pytest.mark.integration

CRATE = f"T{os.getpid()}"
DATABASE = f"track{os.getpid()}"


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto, influxdb: InfluxDB) -> Iterator[RunningBoard]:
    """One board for this module, on a database holding the routes of CRATE and its two profiled twins."""
    running = start_track_board(tmp_path_factory.mktemp("board"), mosquitto.port, influxdb.url, DATABASE, CRATE)
    yield running
    running.stop()


def _track(board: RunningBoard, crate: str, hours: str = "6") -> tuple[int, dict]:
    status, cookie = sign_in(board)
    assert status == 303
    return api(board, cookie, f"/api/crates/{crate}/track?hours={hours}")


def test_track_is_cut_at_the_lost_fix_and_carries_the_latest_tilt_and_shock(board: RunningBoard) -> None:
    """Fixes come back as two stretches in time order, with the last fix, tilt 42.5° tipped and the 3.40 g shock."""
    status, data = _track(board, CRATE)
    assert status == 200
    assert [[(lat, lon) for _, lat, lon in seg] for seg in data["segments"]] == [
        [(52.3086, 4.7639), (52.33, 4.7), (52.35, 4.64)],
        [(52.14, 4.49), (52.16, 4.49)],
    ]
    assert (data["last"]["lat"], data["last"]["speed_kmh"], data["last"]["satellites"]) == (52.16, 12.5, 7)
    assert data["fix"] is True
    assert (data["orientation"]["tilt_deg"], data["orientation"]["stance"]) == (42.5, "tipped")
    assert data["shock"]["shock_g"] == 3.4


def test_the_stance_is_judged_against_the_crates_profile(board: RunningBoard) -> None:
    """The same 42.5° is tipped under cryo's 30° (the default), upright under a 45° limit, and not judged under a
    profile without a tilt rule; the answer carries the limit it used."""
    stances = {}
    for suffix in ("", "-45", "-fridge"):
        status, data = _track(board, CRATE + suffix)
        assert status == 200
        stances[suffix] = (data["orientation"]["stance"], data["tipped_deg"])
    assert stances == {"": ("tipped", 30.0), "-45": ("upright", 45.0), "-fridge": ("unjudged", None)}


def test_crate_without_position_gets_an_empty_track(board: RunningBoard) -> None:
    """A crate with nothing stored gets no stretch, no last fix, no orientation and no shock."""
    status, data = _track(board, f"{CRATE}-none")
    assert status == 200
    shown = (data["segments"], data["last"], data["fix"], data["orientation"], data["shock"])
    assert shown == ([], None, None, None, None)


def test_track_window_must_be_a_number(board: RunningBoard) -> None:
    """A window that is not a number is refused with 400 naming it."""
    status, data = _track(board, CRATE, "soon")
    assert status == 400
    assert "hours" in data["error"]
