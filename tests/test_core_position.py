"""Pure position and orientation arithmetic: haversine distance, tilt and shock from an acceleration."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.position.geometry import Position, distance_m, shock_g, tilt_deg

KIX = Position(34.4347, 135.2440)
AMS = Position(52.3105, 4.7683)


def test_distance_between_kansai_and_schiphol_is_about_9240_km() -> None:
    """KIX to AMS along the great circle is about 9,240 km."""
    assert 9_200_000 < distance_m(KIX, AMS) < 9_280_000


def test_one_degree_of_latitude_is_about_111_km() -> None:
    """A degree along a meridian is 111.2 km on the mean-radius sphere."""
    assert distance_m(Position(0.0, 0.0), Position(1.0, 0.0)) == pytest.approx(111_195, abs=1)


@pytest.mark.parametrize(("lat", "lon"), [(91.0, 0.0), (0.0, -180.5), (math.nan, 0.0), (0.0, math.inf)])
def test_positions_off_the_earth_are_refused(lat: float, lon: float) -> None:
    """A latitude beyond ±90, a longitude beyond ±180, NaN or infinity: ValueError naming the coordinate."""
    with pytest.raises(ValueError, match=r"latitude|longitude"):
        Position(lat, lon)


@pytest.mark.parametrize(
    ("vector", "degrees"),
    [((0.0, 0.0, 1.0), 0.0), ((1.0, 0.0, 0.0), 90.0), ((0.0, -1.0, 0.0), 90.0), ((0.0, 0.0, -1.0), 180.0)],
)
def test_tilt_is_the_angle_of_gravity_to_the_shipper_axis(vector: tuple[float, float, float], degrees: float) -> None:
    """Upright 0°, on its side 90°, upside down 180°."""
    assert tilt_deg(*vector) == pytest.approx(degrees)


def test_shock_is_the_departure_from_one_g() -> None:
    """At rest 0 g; a 3 g jolt straight down on top of gravity is 3 g; free fall is 1 g."""
    assert shock_g(0.0, 0.0, 1.0) == pytest.approx(0.0)
    assert shock_g(0.0, 0.0, 4.0) == pytest.approx(3.0)
    assert shock_g(0.0, 0.0, 0.0) == pytest.approx(1.0)


coordinate = st.builds(
    Position, st.floats(min_value=-90.0, max_value=90.0), st.floats(min_value=-180.0, max_value=180.0)
)


@given(a=coordinate, b=coordinate)
def test_distance_is_symmetric_and_at_most_half_the_circumference(a: Position, b: Position) -> None:
    """d(a, b) = d(b, a), never negative, never beyond half the Earth's circumference."""
    assert distance_m(a, b) == pytest.approx(distance_m(b, a), abs=1e-6)
    assert 0.0 <= distance_m(a, b) <= math.pi * 6_371_008.8 + 1e-6


@given(vector=st.tuples(*[st.floats(min_value=-16.0, max_value=16.0)] * 3))
def test_tilt_is_always_between_0_and_180(vector: tuple[float, float, float]) -> None:
    """Any reading an ADXL345 (±16 g) can give yields an angle within 0..180."""
    assert 0.0 <= tilt_deg(*vector) <= 180.0
