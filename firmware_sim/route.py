"""A shipment's route and the GPS receiver riding with it: waypoints in, NMEA 0183 out.

Pure (no clocks, no I/O): the position is interpolated between timed waypoints (a dwell
is two waypoints at the same place: an airport, a customs stop), and the receiver has
no fix during the route's ``no_fix`` spans (indoors, in an aircraft's hold). Sentences
are built with pynmea2, the parser the agent reads them with.
"""

from __future__ import annotations

import bisect
import datetime
from collections.abc import Sequence
from dataclasses import dataclass

import pynmea2

from coldchain.position.geometry import KNOT_KMH, Position, distance_m

__all__ = ["NoFix", "Route", "Waypoint"]

FIX_SATELLITES = 9  # what an open-sky receiver typically tracks
NO_FIX_SATELLITES = 2  # a few weak ones through a roof: too few for a fix


@dataclass(frozen=True, slots=True)
class Waypoint:
    """The crate is at ``position`` at simulated second ``at_s`` (``name`` for people: "KIX", "customs")."""

    at_s: float
    position: Position
    name: str = ""


@dataclass(frozen=True, slots=True)
class NoFix:
    """The receiver has no fix from ``start_s`` until ``end_s`` (``reason``: "indoors", "hold"...)."""

    start_s: float
    end_s: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Route:
    """Timed waypoints (ascending, at least one) and the spans without a fix."""

    waypoints: Sequence[Waypoint]
    no_fix: Sequence[NoFix] = ()

    def __post_init__(self) -> None:
        times = [w.at_s for w in self.waypoints]
        if not times or times != sorted(times) or len(set(times)) != len(times):
            raise ValueError("a route needs at least one waypoint, in strictly ascending time")

    def _leg(self, t_s: float) -> tuple[Waypoint, Waypoint]:
        times = [w.at_s for w in self.waypoints]
        i = bisect.bisect_right(times, t_s)
        if i == 0:
            return self.waypoints[0], self.waypoints[0]
        if i == len(times):
            return self.waypoints[-1], self.waypoints[-1]
        return self.waypoints[i - 1], self.waypoints[i]

    def position(self, t_s: float) -> Position:
        """Where the crate is at ``t_s``: linear in latitude and longitude along the current leg."""
        a, b = self._leg(t_s)
        if a is b:
            return a.position
        f = (t_s - a.at_s) / (b.at_s - a.at_s)
        return Position(
            a.position.lat + (b.position.lat - a.position.lat) * f,
            a.position.lon + (b.position.lon - a.position.lon) * f,
        )

    def speed_kmh(self, t_s: float) -> float:
        """The current leg's mean speed (0 while dwelling, before the start and after the end)."""
        a, b = self._leg(t_s)
        if a is b:
            return 0.0
        return distance_m(a.position, b.position) / (b.at_s - a.at_s) * 3.6

    def has_fix(self, t_s: float) -> bool:
        """Whether the receiver has a fix at ``t_s``."""
        return not any(span.start_s <= t_s < span.end_s for span in self.no_fix)

    def nmea(self, t_s: float, epoch_ms: int) -> list[bytes]:
        """The receiver's output for the second at ``t_s`` (``epoch_ms`` is t = 0): RMC then GGA."""
        when = datetime.datetime.fromtimestamp(epoch_ms / 1000 + t_s, tz=datetime.UTC)
        hhmmss, ddmmyy = when.strftime("%H%M%S.00"), when.strftime("%d%m%y")
        if not self.has_fix(t_s):
            rmc = ("RMC", (hhmmss, "V", "", "", "", "", "", "", ddmmyy, "", "", "N"))
            gga = ("GGA", (hhmmss, "", "", "", "", "0", f"{NO_FIX_SATELLITES:02d}", "", "", "", "", "", "", ""))
        else:
            here = self.position(t_s)
            lat, ns = _ddmm(here.lat, 2), "N" if here.lat >= 0 else "S"
            lon, ew = _ddmm(here.lon, 3), "E" if here.lon >= 0 else "W"
            knots = f"{self.speed_kmh(t_s) / KNOT_KMH:.1f}"
            rmc = ("RMC", (hhmmss, "A", lat, ns, lon, ew, knots, "", ddmmyy, "", "", "A"))
            gga = ("GGA", (hhmmss, lat, ns, lon, ew, "1", f"{FIX_SATELLITES:02d}", "0.9", "10.0", "M", "", "M", "", ""))
        return [_render(*rmc), _render(*gga)]


def _ddmm(degrees: float, width: int) -> str:
    """Decimal degrees as NMEA's [d]ddmm.mmmm (sign dropped: the hemisphere letter carries it)."""
    whole = int(abs(degrees))
    minutes = (abs(degrees) - whole) * 60
    if round(minutes, 4) >= 60.0:  # 59.99999' rounds up to the next degree
        whole, minutes = whole + 1, 0.0
    return f"{whole:0{width}d}{minutes:07.4f}"


def _render(kind: str, fields: tuple[str, ...]) -> bytes:
    sentence = pynmea2.RMC("GP", kind, fields) if kind == "RMC" else pynmea2.GGA("GP", kind, fields)
    return f"{sentence}\r\n".encode("ascii")
