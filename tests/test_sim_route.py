"""The simulated route and GPS receiver (firmware_sim.route), from the cryo-air-route scenario."""

from __future__ import annotations

import re
import tomllib

import pytest
from sim_scenarios import EPOCH_MS, load

from coldchain.errors import ConfigError
from coldchain.position.geometry import Position, distance_m
from edge.probes.nmea import read_nmea
from firmware_sim.route import Route
from firmware_sim.scenario import parse_scenario

HOUR_S = 3600.0
LEIDEN = Position(52.1660, 4.4780)


def _route() -> Route:
    route = load("cryo-air-route").route
    assert route is not None
    return route


@pytest.mark.parametrize(
    ("hour", "fix"),
    [(0.5, True), (2.0, True), (4.0, False), (7.6, True), (12.0, False), (20.6, True), (22.0, False), (25.5, True)],
)
def test_receiver_loses_its_fix_indoors_and_in_the_hold(hour: float, fix: bool) -> None:
    """Fix on the road and on the apron; none in the KIX warehouse, the aircraft's hold, the customs hall."""
    updates = [read_nmea(line) for line in _route().nmea(hour * HOUR_S, EPOCH_MS)]
    assert [u is not None and u.fix for u in updates] == [fix, fix]


def test_no_fix_sentences_carry_no_position() -> None:
    """In the hold the receiver says void (RMC V, GGA quality 0) with two satellites, and no coordinates."""
    rmc, gga = (read_nmea(line) for line in _route().nmea(12 * HOUR_S, EPOCH_MS))
    assert rmc is not None
    assert gga is not None
    assert (rmc.position, gga.position, gga.satellites) == (None, None, 2)


def test_positions_decode_to_the_waypoints_within_a_metre() -> None:
    """The NMEA the simulator writes reads back (through pynmea2) to the route's own position."""
    route = _route()
    for hour in (0.0, 2.0, 24.5, 25.0):
        update = read_nmea(route.nmea(hour * HOUR_S, EPOCH_MS)[0])
        assert update is not None
        assert update.position is not None
        assert distance_m(update.position, route.position(hour * HOUR_S)) < 1.0
    assert distance_m(route.position(26 * HOUR_S), LEIDEN) == 0.0


def test_speed_is_the_legs_and_zero_while_dwelling() -> None:
    """On the road to KIX about 41 km/h (81 km in 2 h); at the customs stop 0."""
    route = _route()
    rmc = read_nmea(route.nmea(2 * HOUR_S, EPOCH_MS)[0])
    assert rmc is not None
    assert rmc.speed_kmh is not None
    assert 38.0 < rmc.speed_kmh < 44.0
    assert route.speed_kmh(23 * HOUR_S) == 0.0


BASE = 'name = "x"\nprofile = "cryo"\nduration = "1d"\n[shipper]\nkind = "dry_ice"\n[[probes]]\nname = "p"\n'


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("[[route.waypoints]]\nat = 0\nlat = 91.0\nlon = 0.0\n", "route.waypoints[0].lat"),
        ("[[route.waypoints]]\nat = 0\nlat = 1.0\nlon = 190.0\n", "longitude 190.0"),
        (
            "[[route.waypoints]]\nat = 60\nlat = 1.0\nlon = 1.0\n[[route.waypoints]]\nat = 0\nlat = 1.0\nlon = 1.0\n",
            "strictly ascending time",
        ),
        ('[[route.no_fix]]\nat = 0\nduration = "1h"\n', "needs its waypoints"),
    ],
)
def test_bad_routes_are_refused_naming_the_key(route: str, message: str) -> None:
    """A coordinate off the Earth, waypoints out of order, spans without waypoints: one ConfigError saying so."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_scenario(tomllib.loads(BASE + route), "x.toml")
