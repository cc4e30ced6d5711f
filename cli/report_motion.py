"""Where each crate went and how it was handled, for the release report: route, phases, tilts and shocks.

Read from the gateway's measurements ``position`` (``fix``; ``lat``, ``lon`` with a fix),
``orientation`` (``tilt_deg``), ``shock`` (``shock_g``, ``tilt_deg``) and the newest ``shipment``
record of the crate (its ``origin_area_*`` and ``destination_area_*`` fields: the geofences the
phases are judged by, ``coldchain.position.phases``). A crate with none of these points has no motion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.influx_read import Reader
from adapters.influx_rows import StoredPoint
from coldchain.position.geometry import Position
from coldchain.position.phases import Area, PhaseSpan, phase_spans
from coldchain.profiles import Profile

__all__ = ["CrateMotion", "Shock", "Tilt", "motion_of", "read_motion"]

AREAS = ("origin_area", "destination_area")


@dataclass(frozen=True, slots=True)
class Tilt:
    """The crate stood beyond the profile's tilt limit from ``start_ms`` (at most ``peak_deg``) until ``end_ms``
    (None: still at the end of the window)."""

    start_ms: int
    end_ms: int | None
    peak_deg: float


@dataclass(frozen=True, slots=True)
class Shock:
    """A reported shock and the tilt it left the crate at."""

    ts_ms: int
    shock_g: float
    tilt_deg: float | None


@dataclass(frozen=True, slots=True)
class CrateMotion:
    """One crate's route (stretches of (ts, lat, lon), broken where it had no fix), phases, tilts and shocks."""

    crate: str
    track: tuple[tuple[tuple[int, float, float], ...], ...]
    origin: Area | None
    destination: Area | None
    phases: tuple[PhaseSpan, ...]
    tipped_deg: float | None  # the profile's tilt limit the tilts are judged against (None: it sets none)
    tilts: tuple[Tilt, ...]
    shocks: tuple[Shock, ...]

    def time_in(self, phase: str) -> int:
        """Milliseconds spent in ``phase`` within the window."""
        return sum(s.duration_ms for s in self.phases if s.phase == phase)

    @property
    def fixes(self) -> int:
        """How many positions the route holds."""
        return sum(len(stretch) for stretch in self.track)


def _number(row: Mapping[str, Any], key: str) -> float | None:
    """A finite number of a row, None for anything else (an absent field: null in InfluxQL, "" in Flux)."""
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _area(row: Mapping[str, Any], name: str) -> Area | None:
    lat, lon, radius = (_number(row, f"{name}_{key}") for key in ("lat", "lon", "radius_km"))
    if lat is None or lon is None or radius is None or not (-90 <= lat <= 90 and -180 <= lon <= 180 and radius > 0):
        return None
    return Area(Position(lat, lon), radius)


def _track(positions: list[StoredPoint]) -> list[tuple[tuple[int, float, float], ...]]:
    """Stretches of fixes, cut at every ``fix = false`` point."""
    stretches: list[tuple[int, float, float]] = []
    out: list[tuple[tuple[int, float, float], ...]] = []
    for ts, row in positions:
        lat, lon = _number(row, "lat"), _number(row, "lon")
        if row.get("fix") is False or lat is None or lon is None:
            if stretches:
                out.append(tuple(stretches))
            stretches = []
            continue
        if -90 <= lat <= 90 and -180 <= lon <= 180:
            stretches.append((ts, lat, lon))
    if stretches:
        out.append(tuple(stretches))
    return out


def _tilts(stances: list[tuple[int, float]], limit: float | None) -> list[Tilt]:
    """The spans beyond ``limit``, from time-ordered (ts, tilt) reports."""
    if limit is None:
        return []
    tilts: list[Tilt] = []
    start: int | None = None
    peak = 0.0
    for ts, tilt in stances:
        if tilt > limit:
            start, peak = (ts, tilt) if start is None else (start, max(peak, tilt))
        elif start is not None:
            tilts.append(Tilt(start, ts, peak))
            start = None
    if start is not None:
        tilts.append(Tilt(start, None, peak))
    return tilts


def motion_of(
    crate: str,
    points: Mapping[str, list[StoredPoint]],
    profile: Profile | None,
    start_ms: int,
    end_ms: int,
) -> CrateMotion | None:
    """A crate's motion from its stored points by measurement (``position``, ``orientation``, ``shock``,
    ``shipment``), each time-ordered; None when it has no position, orientation or shock."""
    positions, shocks = points.get("position", []), points.get("shock", [])
    reports = [*points.get("orientation", []), *shocks]
    stances = [(ts, tilt) for ts, row in reports if (tilt := _number(row, "tilt_deg")) is not None]
    if not positions and not stances:
        return None
    records = [row for _, row in points.get("shipment", []) if any(_area(row, name) for name in AREAS)]
    origin, destination = (_area(records[-1], name) for name in AREAS) if records else (None, None)
    track = _track(positions)
    fixes = [(ts, Position(lat, lon)) for stretch in track for ts, lat, lon in stretch]
    limit = profile.tipped_deg if profile is not None else None
    return CrateMotion(
        crate,
        tuple(track),
        origin,
        destination,
        tuple(phase_spans(fixes, origin, destination, start_ms, end_ms)),
        limit,
        tuple(_tilts(sorted(stances), limit)),
        tuple(Shock(ts, g, _number(row, "tilt_deg")) for ts, row in shocks if (g := _number(row, "shock_g"))),
    )


def read_motion(
    reader: Reader, crates: tuple[str, ...], profile: Profile | None, start_ms: int, end_ms: int
) -> tuple[CrateMotion, ...]:
    """Every crate's motion in [start_ms, end_ms), judged by the newest record of its shipment."""
    out: list[CrateMotion] = []
    for crate in crates:
        points = {m: reader.points(m, [crate], start_ms, end_ms) for m in ("position", "orientation", "shock")}
        points["shipment"] = reader.points("shipment", [crate], 0, None)  # written when a gateway run first saw it
        motion = motion_of(crate, points, profile, start_ms, end_ms)
        if motion is not None:
            out.append(motion)
    return tuple(out)
