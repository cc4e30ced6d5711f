"""Shipment phases: where a crate is on its trip (origin, transit, destination) and what rules do there.

A shipment's record may draw a circle around its origin and its destination; the
crate's latest GPS fix inside one is in that phase, anywhere else (or before any
fix) in transit. A rule may be silenced (``"off"``) or given another ``delay_s`` in
a phase: a dry shipper is laid down on purpose while it is packed at the origin.
Pure: stdlib only, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from coldchain.position.geometry import Position, distance_m
from coldchain.settings.table import Table

__all__ = [
    "DESTINATION", "ORIGIN", "PHASES", "TRANSIT", "Area", "PhaseOverride", "PhaseRules",
    "parse_area", "parse_phase_rules", "phase_of",
]  # fmt: skip

ORIGIN: Final = "origin"
TRANSIT: Final = "transit"
DESTINATION: Final = "destination"
PHASES: Final = (ORIGIN, TRANSIT, DESTINATION)
MAX_RADIUS_KM: Final = 100.0  # an area is a site (a lab, an airport), not a region


@dataclass(frozen=True, slots=True)
class Area:
    """A circle on the Earth: a site's centre and how far from it counts as being there."""

    center: Position
    radius_km: float

    def contains(self, where: Position) -> bool:
        """True when ``where`` is within the circle (its edge included)."""
        return distance_m(self.center, where) <= self.radius_km * 1000.0


def phase_of(where: Position | None, origin: Area | None, destination: Area | None) -> str:
    """The phase of a crate whose latest fix is ``where`` (None: no fix yet, which counts as transit)."""
    if where is None:
        return TRANSIT
    if origin is not None and origin.contains(where):
        return ORIGIN
    if destination is not None and destination.contains(where):
        return DESTINATION
    return TRANSIT


@dataclass(frozen=True, slots=True)
class PhaseOverride:
    """What a rule does in one phase: ``off`` raises nothing; ``delay_s`` (None: the rule's own) replaces its delay."""

    off: bool = False
    delay_s: float | None = None


@dataclass(frozen=True, slots=True)
class PhaseRules:
    """A rule's override in each phase (the default changes nothing)."""

    origin: PhaseOverride = PhaseOverride()
    transit: PhaseOverride = PhaseOverride()
    destination: PhaseOverride = PhaseOverride()

    def get(self, phase: str) -> PhaseOverride:
        """The override for ``phase`` (one of ``PHASES``)."""
        override: PhaseOverride = getattr(self, phase)
        return override


def parse_area(t: Table, name: str) -> Area | None:
    """An optional ``name = {lat = …, lon = …, radius_km = …}`` of table ``t``."""
    if name not in t:
        return None
    area = t.table(name)
    lat = area.number("lat", minimum=-90.0, maximum=90.0)
    lon = area.number("lon", minimum=-180.0, maximum=180.0)
    radius = area.number("radius_km", minimum=0.0, maximum=MAX_RADIUS_KM)
    if radius <= 0.0:
        raise area.error("radius_km", "must be above 0")
    return Area(Position(lat, lon), radius)


def parse_phase_rules(t: Table, has_delay: bool) -> PhaseRules:
    """A rule's optional ``phases`` table: each phase ``"off"`` or ``{ delay_s = … }`` (the latter if ``has_delay``)."""
    if "phases" not in t:
        return PhaseRules()
    table = t.table("phases")
    overrides: dict[str, PhaseOverride] = {}
    for phase in list(table.keys()):
        if phase not in PHASES:
            raise table.error(phase, f"is not a phase: one of {list(PHASES)}")
        if isinstance(table.data[phase], str):
            table.text(phase, choices=("off",))
            overrides[phase] = PhaseOverride(off=True)
            continue
        entry = table.table(phase, required=True)  # a number or a list is refused naming the key
        if not has_delay:
            raise entry.error("delay_s", 'this rule kind has no delay: a phase can only turn it "off"')
        overrides[phase] = PhaseOverride(delay_s=entry.number("delay_s", minimum=0.0))
    return PhaseRules(**overrides)
