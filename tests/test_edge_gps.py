"""The GPS receiver driver: NMEA decoding is total, fix is a state, the simulated route over a real pty."""

from __future__ import annotations

import threading
from pathlib import Path

import pynmea2
import pytest
from edge_helpers import Listen, PtyBoard, RunAgent, agent_config, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sim_scenarios import EPOCH_MS, load

from cli.services import Mosquitto
from coldchain.position.geometry import Position
from edge.clock import Clock
from edge.events import Event, Notice
from edge.probes.gps import GpsReceiver, GpsTracker
from edge.probes.gps_config import GpsConfig
from edge.probes.nmea import GpsUpdate, NmeaError, read_nmea

HOUR_S = 3600.0
KYOTO = Position(35.0266, 135.7838)


def _framed(kind: str, fields: list[str]) -> bytes:
    body = ",".join([f"GP{kind}", *fields])
    return f"${body}*{pynmea2.NMEASentence.checksum(body):02X}\r\n".encode()


nmea_field = st.text(alphabet="0123456789.-+NSEWAVneaif ", max_size=12)
framed_nmea = st.builds(
    _framed, st.sampled_from(["RMC", "GGA", "GSV", "VTG", "ZZZ"]), st.lists(nmea_field, max_size=16)
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(line=st.binary(max_size=100) | framed_nmea)
def test_any_line_gives_an_update_nothing_or_an_nmea_error(line: bytes) -> None:
    """read_nmea of any bytes returns a GpsUpdate or None, or raises NmeaError; a fix always has a real position."""
    try:
        update = read_nmea(line)
    except NmeaError:
        return
    if update is not None and update.position is not None:
        assert -90.0 <= update.position.lat <= 90.0
        assert -180.0 <= update.position.lon <= 180.0


def test_a_void_rmc_is_no_fix_not_a_position() -> None:
    """RMC status V with stale coordinates still in its fields: no fix, the coordinates are not used."""
    update = read_nmea(
        _framed("RMC", ["120000", "V", "3501.5960", "N", "13547.0280", "E", "0.0", "", "071226", "", ""])
    )
    assert update == GpsUpdate("RMC", None)


def test_tracker_reports_position_at_most_every_report_s_and_no_fix_once() -> None:
    """Fixes every second with report_s 60 give one position a minute; losing the fix gives one gps_no_fix."""
    tracker = GpsTracker("gps0", report_s=60.0)
    fix = GpsUpdate("RMC", KYOTO, speed_kmh=12.5)
    events = [n.event for s in range(0, 130) for n in tracker.feed(fix, 1_000 * s, 1_000 * s)]
    assert events == ["position", "position", "position"]  # at 0, 60 and 120 s
    lost = [n for s in range(130, 140) for n in tracker.feed(GpsUpdate("GGA", None, satellites=2), s, s)]
    assert [(n.event, n.detail) for n in lost] == [("gps_no_fix", {"probe": "gps0", "satellites": 2})]
    back = tracker.feed(fix, 141_000, 141_000)
    assert [(n.event, n.detail) for n in back] == [
        ("position", {"probe": "gps0", "satellites": 2, "lat": 35.0266, "lon": 135.7838, "speed_kmh": 12.5})
    ]


def test_simulated_route_over_a_pty_reports_fix_changes_and_never_a_position_without_fix(board: PtyBoard) -> None:
    """cryo-air-route every 10 simulated minutes: Kyoto, the warehouse, the hold, customs, Leiden, as states."""
    route = load("cryo-air-route").route
    assert route is not None
    receiver = GpsReceiver(GpsConfig(board.device, report_s=86_400.0), Clock(lambda: 1_795_000_000_000, lambda: 5))
    events: list[Event] = []
    stop = threading.Event()
    thread = threading.Thread(target=receiver.run, args=(events.append, stop), daemon=True)
    thread.start()
    try:
        wait_until(lambda: receiver.device is not None, 10, "port open")
        for minute in range(0, 26 * 60 + 1, 10):
            board.write(b"".join(route.nmea(minute * 60.0, EPOCH_MS)))
        wait_until(lambda: len(events) >= 7, 10, "seven fix changes")
    finally:
        stop.set()
        thread.join(5)
    notices = [e for e in events if isinstance(e, Notice)]
    assert [n.event for n in notices] == ["position", "gps_no_fix"] * 3 + ["position"]
    assert (notices[0].detail["lat"], notices[0].detail["lon"]) == (KYOTO.lat, KYOTO.lon)
    assert notices[-1].detail["lat"] == 52.298  # back out of the customs hall at Schiphol
    assert receiver.bad_lines == 0


@pytest.mark.integration
def test_agent_with_a_gps_publishes_position_and_no_fix_events(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, board: PtyBoard, listen: Listen, run_agent: RunAgent
) -> None:
    """[gps] port = a pty: the agent publishes the simulated receiver's fix and its loss on the events topic."""
    crate = f"{crate_prefix}-G"
    route = load("cryo-air-route").route
    assert route is not None
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/events"])
    config = agent_config(tmp_path, crate, mosquitto, extra=f'[gps]\nport = "{board.device}"\n')
    run = run_agent(config, with_probes=True)
    wait_until(lambda: any(getattr(p, "device", None) for p in run.agent.probes), 10, "gps port open")
    board.write(b"".join(route.nmea(0.0, EPOCH_MS) + route.nmea(12 * HOUR_S, EPOCH_MS)))
    got = wait_until(lambda: len(listener.on("/events")) >= 2 and listener.on("/events"), 10, "gps events")
    # RMC comes before GGA: the first fix is reported before any satellite count, the loss with none
    assert [(e["event"], e.get("lat"), e.get("satellites")) for e in got] == [
        ("position", KYOTO.lat, None),
        ("gps_no_fix", None, None),
    ]
