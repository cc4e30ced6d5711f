"""Shipment phases: the phase from a fix and the geofences, rules silenced or delayed per phase, config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alarm_helpers import profile_of
from gateway_helpers import PROFILES, TS, Client, GatewayProcess, gateway_config, wait_until

from cli.services import InfluxDB, Mosquitto
from coldchain.alarms.crate_monitor import CrateMonitor
from coldchain.errors import ConfigError
from coldchain.position.geometry import Position
from coldchain.position.phases import Area, phase_of
from gateway.config import load_config

MIN = 60_000
KYOTO, LEIDEN, ANCHORAGE = Position(35.0262, 135.7806), Position(52.1664, 4.4781), Position(61.1744, -149.9964)
ORIGIN, DESTINATION = Area(KYOTO, 5.0), Area(LEIDEN, 5.0)
AREAS = f"""
origin_area = {{ lat = {KYOTO.lat}, lon = {KYOTO.lon}, radius_km = 5 }}
destination_area = {{ lat = {LEIDEN.lat}, lon = {LEIDEN.lon}, radius_km = 5 }}
"""
PHASED = """
[p]
[[p.rules]]
name = "tipped"
kind = "tilt"
severity = "warning"
limit_deg = 30.0
delay_s = 600
phases = { origin = "off", destination = { delay_s = 60 } }
[[p.rules]]
name = "dropped"
kind = "shock"
severity = "warning"
limit_g = 3.0
phases = { destination = "off" }
"""


@pytest.mark.parametrize(
    ("where", "origin", "destination", "phase"),
    [
        (None, ORIGIN, DESTINATION, "transit"),  # no fix yet: behaves as transit
        (KYOTO, ORIGIN, DESTINATION, "origin"),
        (Position(35.0262, 135.8300), ORIGIN, DESTINATION, "origin"),  # 4.5 km east: inside
        (Position(35.0262, 135.8400), ORIGIN, DESTINATION, "transit"),  # 5.4 km east: outside
        (ANCHORAGE, ORIGIN, DESTINATION, "transit"),
        (LEIDEN, ORIGIN, DESTINATION, "destination"),
        (KYOTO, None, DESTINATION, "transit"),  # a record without an origin area has no origin phase
        (LEIDEN, ORIGIN, None, "transit"),
    ],
)
def test_phase_follows_the_fix_and_the_areas(
    where: Position | None, origin: Area | None, destination: Area | None, phase: str
) -> None:
    """A fix inside the origin or destination circle is in that phase; elsewhere, or without a fix, in transit."""
    assert phase_of(where, origin, destination) == phase


# (phase entered at minute 0, then tilt 88° at minute 1 and reach minute N, optional later phase) -> transitions
OVERRIDES = [
    ("origin", 300, None, []),  # silenced at origin, however long
    ("transit", 10, None, []),  # the rule's own 10 min delay in transit
    ("transit", 11, None, [("tipped", "active", 11, 1)]),
    ("destination", 2, None, [("tipped", "active", 2, 1)]),  # 1 min at destination
    ("origin", 20, (15, "transit"), []),  # leaving the origin tilted: its delay counts from leaving
    ("origin", 25, (15, "transit"), [("tipped", "active", 25, 15)]),
    ("transit", 30, (5, "origin"), []),  # reaching the origin before the delay ran out
]


@pytest.mark.parametrize(("phase", "until_min", "later", "expected"), OVERRIDES)
def test_tilt_is_silenced_or_delayed_by_the_phase(
    phase: str, until_min: int, later: tuple[int, str] | None, expected: list[tuple[str, str, int, int]]
) -> None:
    """A phase's override silences the tilt rule or replaces its delay; leaving a silencing phase starts the delay."""
    monitor = CrateMonitor("C-1", profile_of(PHASED))
    out = monitor.enter_phase(phase, 0) + monitor.orientation(88.0, 1 * MIN)
    if later is not None:
        out += monitor.orientation(88.0, later[0] * MIN) + monitor.enter_phase(later[1], later[0] * MIN)
    out += monitor.orientation(88.0, until_min * MIN)
    assert [(t.rule, t.state, t.ts // MIN, t.started_ts // MIN) for t in out] == expected


@pytest.mark.parametrize(("phase", "raised"), [("origin", True), ("transit", True), ("destination", False)])
def test_shock_is_silenced_by_the_phase(phase: str, raised: bool) -> None:
    """A shock rule turned off in a phase raises nothing there, and raises elsewhere."""
    monitor = CrateMonitor("C-1", profile_of(PHASED))
    out = monitor.enter_phase(phase, 0) + monitor.shock(4.0, 0.0, MIN)
    assert [t.rule for t in out] == (["dropped"] if raised else [])


RULE = '[p]\n[[p.rules]]\nname = "r"\nseverity = "warning"\n'


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('kind = "tilt"\nlimit_deg = 30\nphases = { docked = "off" }', "p.rules[0].phases.docked", "is not a phase"),
        ('kind = "tilt"\nlimit_deg = 30\nphases = { origin = "on" }', "p.rules[0].phases.origin", "not one of"),
        ('kind = "tilt"\nlimit_deg = 30\nphases = { origin = 60 }', "p.rules[0].phases.origin", "must be a table"),
        (
            'kind = "tilt"\nlimit_deg = 30\nphases = { origin = { delay_s = -1 } }',
            "p.rules[0].phases.origin.delay_s",
            "below the minimum",
        ),
        (
            'kind = "tilt"\nlimit_deg = 30\nphases = { origin = { delai_s = 1 } }',
            "p.rules[0].phases.origin.delay_s",
            "required",
        ),
        (
            'kind = "shock"\nlimit_g = 3\nphases = { origin = { delay_s = 60 } }',
            "p.rules[0].phases.origin.delay_s",
            "no delay",
        ),
        ('kind = "lid"\nafter_s = 60\nphases = { origin = "off" }', "p.rules[0].phases", "only tilt and shock"),
        ('kind = "high"\nthreshold_c = 8\nphases = { origin = "off" }', "p.rules[0].phases", "only tilt and shock"),
    ],
)
def test_bad_phase_keys_are_refused_naming_the_key(text: str, key: str, problem: str) -> None:
    """Each bad ``phases`` entry of a rule raises a ConfigError naming its key and the problem."""
    with pytest.raises(ConfigError) as caught:
        profile_of(RULE + text)
    assert caught.value.key == key
    assert problem in caught.value.problem


def _gateway_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gw.toml"
    path.write_text(f'[profiles]\nfile = {json.dumps(str(PROFILES))}\ndefault = "cryo"\n{text}')
    return path


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("origin_area = { lat = 95, lon = 0, radius_km = 5 }", "shipments.S-1.origin_area.lat", "maximum"),
        ("origin_area = { lat = 35, lon = 135, radius_km = 0 }", "shipments.S-1.origin_area.radius_km", "above 0"),
        ("origin_area = { lat = 35, lon = 135, radius_km = 500 }", "shipments.S-1.origin_area.radius_km", "maximum"),
        ("destination_area = { lat = 35, lon = 135 }", "shipments.S-1.destination_area.radius_km", "required"),
        ('origin_area = "Kyoto"', "shipments.S-1.origin_area", "must be a table"),
        ("origin_area = { lat = 35, lon = 135, radius_km = 5, r = 1 }", "shipments.S-1.origin_area.r", "not a known"),
        (
            "origin_area = { lat = 35, lon = 135, radius_km = 5 }\n"
            "destination_area = { lat = 35, lon = 135.05, radius_km = 5 }",
            "shipments.S-1.destination_area",
            "overlaps origin_area",
        ),
    ],
)
def test_bad_shipment_area_is_refused_naming_the_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    """Each bad geofence of a shipment record raises a ConfigError naming its key and the problem."""
    path = _gateway_toml(tmp_path, f'[shipments."S-1"]\n{text}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_shipment_areas_are_read(tmp_path: Path) -> None:
    """A record's origin_area and destination_area are read as circles; its details stay the text fields."""
    config = load_config(_gateway_toml(tmp_path, f'[shipments."S-1"]\ncrates = ["C-1"]\norigin = "Kyoto"\n{AREAS}'))
    record = config.shipment_of("C-1")
    assert record is not None
    assert (record.origin_area, record.destination_area) == (ORIGIN, DESTINATION)
    assert record.details == {"origin": "Kyoto"}


def _event(client: Client, crate: str, ts: int, event: str, **fields: float) -> None:
    body = {"v": 1, "crate": crate, "ts": ts, "event": event, **fields}
    client.publish(f"coldchain/v1/crates/{crate}/events", json.dumps(body).encode())


@pytest.mark.integration
def test_gateway_silences_a_tilt_at_the_origin_and_raises_it_in_transit(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str
) -> None:
    """Through a real gateway: the same tilt raises nothing at the shipment's origin and the alarm in transit."""
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(
        '[cryo]\n[[cryo.rules]]\nname = "tipped"\nkind = "tilt"\nseverity = "warning"\nlimit_deg = 30.0\n'
        'phases = { origin = "off" }\n'
    )
    at_origin, in_transit = f"{crate_prefix}-O", f"{crate_prefix}-T"
    record = f'[shipments."S-1"]\ncrates = ["{at_origin}", "{in_transit}"]\n{AREAS}'
    path = gateway_config(tmp_path, mosquitto, influxdb, database, record)
    path.write_text(path.read_text().replace(json.dumps(str(PROFILES)), json.dumps(str(profiles))))
    gateway = GatewayProcess(path, tmp_path / "gateway.log")
    client = Client(mosquitto)
    try:
        for crate, where in ((at_origin, KYOTO), (in_transit, ANCHORAGE)):
            _event(client, crate, TS + 1000, "position", lat=where.lat, lon=where.lon)
            _event(client, crate, TS + 2000, "orientation", tilt_deg=88.0)
            _event(client, crate, TS + 3000, "orientation", tilt_deg=88.0)  # event time moves on: judged
        query = "SELECT rule, state FROM alarm WHERE crate = '{}'"
        rows = wait_until(lambda: influxdb.rows(query.format(in_transit), database), 10, "the transit tilt alarm")
        assert rows == [{"time": TS + 2000, "rule": "tipped", "state": "active"}]
        # the origin crate's events went first, and one more of it after the alarm is stored too
        _event(client, at_origin, TS + 4000, "orientation", tilt_deg=88.0)
        wait_until(
            lambda: len(influxdb.rows(f"SELECT * FROM orientation WHERE crate = '{at_origin}'", database)) == 3,
            10,
            "the origin crate's orientation points",
        )
        assert influxdb.rows(query.format(at_origin), database) == []
    finally:
        client.close()
        assert gateway.stop() == 0, gateway.stderr()
