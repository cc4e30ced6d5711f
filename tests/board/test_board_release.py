"""The crate page's release action against a real board, broker and influxd: the decision of the signed-in
login is recorded on the data the page showed, and refused once that data changed."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from board_helpers import RunningBoard, api, sign_in, start_board, write_config, write_points
from hypothesis import given
from hypothesis import strategies as st

from board.release import problem
from cli.services import InfluxDB, Mosquitto
from gateway.points import temperature_series

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=6),
    max_leaves=20,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={key: JSON | st.text() for key in ("crate", "decision", "note", "sha256")},
)


@given(body=JSON | FIELDS, user=st.text(max_size=120))
def test_release_request_check_is_total(body: object, user: str) -> None:
    """Any JSON body and signed-in name: the check answers None or the problem, never raises."""
    assert problem(body, user) is None or isinstance(problem(body, user), str)


@pytest.fixture
def board(tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str) -> Iterator[RunningBoard]:
    """A board whose crate B<pid> is on shipment SHP-B<pid>: six cold readings, as the gateway writes them."""
    crate = f"B{os.getpid()}"
    series = temperature_series(crate, "cryo", "probe1", f"SHP-{crate}")
    start = int(time.time() * 1000) - 600_000
    write_points(influxdb.url, database, [f"{series} value_c=-170.5,seq={i}i {start + i * 10_000}" for i in range(6)])
    crates = f'[[crates]]\nid = "{crate}"\nprofile = "cryo"\nshipment = "SHP-{crate}"\n'
    running = start_board(write_config(tmp_path, mosquitto.port, influxdb.url, database, crates))
    yield running
    running.stop()


@pytest.mark.integration
def test_release_from_the_crate_page_is_recorded_for_the_signed_in_login_and_refused_after_a_change(
    board: RunningBoard, influxdb: InfluxDB, database: str
) -> None:
    """The page shows the shipment's verdict and data hash; a decision on it is stored with by = the login;
    without the CSRF token it is refused; once a reading more is stored, the same hash is refused (409)."""
    crate = f"B{os.getpid()}"
    status, cookie = sign_in(board)
    assert status == 303
    csrf = api(board, cookie, "/api/me")[1]["csrf"]
    status, shown = api(board, cookie, f"/api/crates/{crate}/release")
    assert status == 200
    assert (shown["kind"], shown["subject"], shown["verdict"], shown["releases"]) == (
        "shipment",
        f"SHP-{crate}",
        "within profile",
        [],
    )
    decision = {"crate": crate, "decision": "released", "note": "record complete", "sha256": shown["sha256"]}
    assert api(board, cookie, "/api/release", decision)[0] == 403
    status, answer = api(board, cookie, "/api/release", decision, csrf)
    assert (status, answer["by"], answer["subject"]) == (201, "ops", f"SHP-{crate}")
    rows = influxdb.rows("SELECT * FROM release", database)
    assert [(r["shipment"], r["by"], r["decision"], r["sha256"]) for r in rows] == [
        (f"SHP-{crate}", "ops", "released", shown["sha256"])
    ]
    again = api(board, cookie, f"/api/crates/{crate}/release")[1]
    assert [(x["by"], x["on_this_data"]) for x in again["releases"]] == [("ops", True)]
    series = temperature_series(crate, "cryo", "probe1", f"SHP-{crate}")
    write_points(influxdb.url, database, [f"{series} value_c=-170.5,seq=6i {int(time.time() * 1000) - 1000}"])
    status, refused = api(board, cookie, "/api/release", decision, csrf)
    assert status == 409
    assert "the record changed since the report you read" in refused["error"]
    assert len(influxdb.rows("SELECT * FROM release", database)) == 1


@pytest.mark.integration
def test_release_without_a_note_is_refused(board: RunningBoard) -> None:
    """A decision needs a note: 400 naming it, nothing recorded."""
    status, cookie = sign_in(board)
    csrf = api(board, cookie, "/api/me")[1]["csrf"]
    decision = {"crate": f"B{os.getpid()}", "decision": "released", "note": " ", "sha256": "ab" * 32}
    status, answer = api(board, cookie, "/api/release", decision, csrf)
    assert (status, answer["error"]) == (400, "'note' is required: 1-1000 printable characters")
