"""The report's route section from stored points: phases timed from fixes and geofences, tilts, shocks; total."""

from __future__ import annotations

import json
from typing import Any

import pytest
from alarm_helpers import shipped_profiles
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.report_motion import motion_of
from coldchain.position.geometry import Position
from coldchain.position.phases import Area, PhaseSpan, phase_spans

MIN = 60_000
LAB, AIRPORT, CLINIC = Position(35.0266, 135.7838), Position(34.4347, 135.2440), Position(35.6803, 139.7186)
ORIGIN, DESTINATION = Area(LAB, 2.0), Area(CLINIC, 2.0)
CRYO = shipped_profiles()["cryo"]

# (fixes as (minute, where), window in minutes) -> (phase, from, to) in minutes
SPANS = [
    ([], (0, 60), [("transit", 0, 60)]),  # no fix: transit throughout
    (
        [(0, LAB), (30, AIRPORT), (50, CLINIC)],
        (0, 60),
        [("origin", 0, 30), ("transit", 30, 50), ("destination", 50, 60)],
    ),
    ([(10, LAB)], (0, 60), [("transit", 0, 10), ("origin", 10, 60)]),  # before the first fix: transit
    ([(0, LAB), (10, LAB), (20, LAB)], (0, 60), [("origin", 0, 60)]),  # repeated fixes: one span
    ([(-30, LAB), (30, AIRPORT)], (0, 60), [("origin", 0, 30), ("transit", 30, 60)]),  # a fix before the window
    ([(0, LAB), (70, AIRPORT)], (0, 60), [("origin", 0, 60)]),  # a fix after it changes nothing inside
    ([(0, AIRPORT), (0, LAB)], (0, 60), [("origin", 0, 60)]),  # two at one instant: the later one holds
]


@pytest.mark.parametrize(("fixes", "window", "expected"), SPANS)
def test_phase_spans_follow_the_fixes_and_cover_the_window(
    fixes: list[tuple[int, Position]], window: tuple[int, int], expected: list[tuple[str, int, int]]
) -> None:
    """Each fix sets the phase until the next; before the first, transit; adjacent spans of a phase are one."""
    spans = phase_spans([(m * MIN, p) for m, p in fixes], ORIGIN, DESTINATION, window[0] * MIN, window[1] * MIN)
    assert spans == [PhaseSpan(phase, a * MIN, b * MIN) for phase, a, b in expected]


def _points(**measurements: list[tuple[int, dict[str, Any]]]) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    return {name: [(m * MIN, row) for m, row in rows] for name, rows in measurements.items()}


def test_motion_from_stored_points_as_the_report_reads_them() -> None:
    """Fixes cut at a lost fix, geofences from the newest record that has them, tilts beyond the profile's
    limit (orientation and shock points together) and shocks."""
    lab = {"fix": True, "lat": LAB.lat, "lon": LAB.lon}
    clinic = {"fix": True, "lat": CLINIC.lat, "lon": CLINIC.lon, "speed_kmh": 0.0}
    areas = {
        f"{name}_area_{key}": value
        for name, where in (("origin", LAB), ("destination", CLINIC))
        for key, value in (("lat", where.lat), ("lon", where.lon), ("radius_km", 2.0))
    }
    points = _points(
        position=[(0, lab), (20, {"fix": False, "lat": None, "lon": None}), (40, clinic)],
        orientation=[(5, {"tilt_deg": 0.0}), (10, {"tilt_deg": 50.0}), (15, {"tilt_deg": 10.0})],
        shock=[(45, {"shock_g": 3.5, "tilt_deg": 88.5})],
        shipment=[(0, areas), (1, {"origin": "Kyoto", "origin_area_lat": ""})],  # a later record without areas
    )
    motion = motion_of("C-1", points, CRYO, 0, 60 * MIN)
    assert motion is not None
    assert motion.track == (((0, LAB.lat, LAB.lon),), ((40 * MIN, CLINIC.lat, CLINIC.lon),))
    assert (motion.origin, motion.destination) == (ORIGIN, DESTINATION)
    assert [(s.phase, s.start_ms // MIN, s.end_ms // MIN) for s in motion.phases] == [
        ("origin", 0, 40),  # the lost fix keeps the phase
        ("destination", 40, 60),
    ]
    assert [(t.start_ms // MIN, None if t.end_ms is None else t.end_ms // MIN, t.peak_deg) for t in motion.tilts] == [
        (10, 15, 50.0),
        (45, None, 88.5),  # still tipped when the window ends
    ]
    assert [(s.ts_ms // MIN, s.shock_g, s.tilt_deg) for s in motion.shocks] == [(45, 3.5, 88.5)]
    assert motion.time_in("transit") == 0
    assert motion_of("C-1", _points(shipment=[(0, areas)]), None, 0, 60 * MIN) is None  # nothing to show


SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4)
FIELDS = ["fix", "lat", "lon", "tilt_deg", "shock_g", *(f"{a}_area_{k}" for a in ("origin", "destination")
                                                        for k in ("lat", "lon", "radius_km"))]  # fmt: skip
ROWS = st.lists(st.tuples(st.integers(-10, 10**7), st.dictionaries(st.sampled_from(FIELDS), SCALARS)), max_size=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=ROWS, orientation=ROWS, shock=ROWS, shipment=ROWS)
def test_motion_reader_is_total(
    position: list[tuple[int, dict[str, Any]]],
    orientation: list[tuple[int, dict[str, Any]]],
    shock: list[tuple[int, dict[str, Any]]],
    shipment: list[tuple[int, dict[str, Any]]],
) -> None:
    """Whatever the stored points hold, the motion is None or in-range positions, phases tiling the window and
    finite tilts and shocks (the JSON report writes it without NaN)."""
    stored = {"position": position, "orientation": orientation, "shock": shock, "shipment": shipment}
    points = {name: sorted(rows, key=lambda p: p[0]) for name, rows in stored.items()}
    motion = motion_of("C-1", points, CRYO, 0, 10**7)
    if motion is None:
        return
    assert all(-90 <= lat <= 90 and -180 <= lon <= 180 for stretch in motion.track for _, lat, lon in stretch)
    assert sum(s.duration_ms for s in motion.phases) == 10**7
    json.dumps([[t.peak_deg for t in motion.tilts], [(s.shock_g, s.tilt_deg) for s in motion.shocks]], allow_nan=False)
