"""Where a crate is and how it stands: pure arithmetic on positions and accelerations.

Stdlib only, no I/O. Latitudes and longitudes are WGS-84 decimal degrees (north and
east positive); accelerations are in g along the accelerometer's axes, z along the
shipper's axis (up when it stands upright).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

__all__ = ["EARTH_RADIUS_M", "KNOT_KMH", "Position", "distance_m", "shock_g", "tilt_deg"]

EARTH_RADIUS_M: Final = 6_371_008.8  # the mean radius (IUGG): haversine's error is under 0.5 %
KNOT_KMH: Final = 1.852


@dataclass(frozen=True, slots=True)
class Position:
    """A point on the Earth; construction refuses coordinates that are not on it."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat) and -90.0 <= self.lat <= 90.0):
            raise ValueError(f"latitude {self.lat!r} is not between -90 and 90")
        if not (math.isfinite(self.lon) and -180.0 <= self.lon <= 180.0):
            raise ValueError(f"longitude {self.lon!r} is not between -180 and 180")


def distance_m(a: Position, b: Position) -> float:
    """Great-circle distance between two positions, in metres (haversine)."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dphi, dlambda = phi2 - phi1, math.radians(b.lon - a.lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def tilt_deg(x_g: float, y_g: float, z_g: float) -> float:
    """Angle between the shipper's axis (z) and vertical, 0..180 degrees, from a resting acceleration.

    At rest the accelerometer measures gravity only, so the angle of the measured vector
    to the z axis is the tilt; a zero vector (free fall) has no direction and gives 0.
    """
    norm = math.sqrt(x_g * x_g + y_g * y_g + z_g * z_g)
    if norm == 0.0:
        return 0.0
    return math.degrees(math.acos(max(-1.0, min(1.0, z_g / norm))))


def shock_g(x_g: float, y_g: float, z_g: float) -> float:
    """How far the measured acceleration's magnitude is from 1 g (gravity alone): a jolt or a fall."""
    return abs(math.sqrt(x_g * x_g + y_g * y_g + z_g * z_g) - 1.0)
