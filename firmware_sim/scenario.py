"""Scenario files: a shipment to simulate (shipper, ambient lane, handling events, probes, faults).

``parse_scenario`` checks a parsed file with ``coldchain.settings.table.Table`` (errors
name the file, the key and the problem) and ``Scenario`` builds the pure model and
board from it; ``read_scenario`` is the one place that reads a file. ``config/scenarios/*.toml`` are the
shipped examples; every key is documented in ``config/scenarios/README.md``.
"""

from __future__ import annotations

import math
import random
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from coldchain.errors import ConfigError
from coldchain.position.geometry import Position
from coldchain.profiles import Profile
from coldchain.settings.table import Table
from firmware_sim.ambient import PRESETS, Ambient
from firmware_sim.board import Board, BoardSpec
from firmware_sim.faults import FAULT_KINDS, PROBE_FAULTS, Fault
from firmware_sim.model import EVENT_KINDS, SHIPPER_DEFAULTS, Event, ShipperModel, ShipperParams
from firmware_sim.route import NoFix, Route, Waypoint
from firmware_sim.sensor import Probe

__all__ = ["REAL_HEARTBEAT_S", "Scenario", "paced_heartbeat", "parse_scenario", "read_scenario"]

LOCATIONS = ("payload", "ambient")
REAL_HEARTBEAT_S = 5.0  # a scenario's board sends a heartbeat at least this often in real time
_SHIPPER_NUMBERS = (
    "plateau_c",
    "plateau_empty_c",
    "reference_ambient_c",
    "coupling",
    "warm_tau_h",
    "lid_tau_min",
    "recovery_tau_min",
    "tip_factor",
    "lid_factor",
)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A parsed scenario: everything needed to build the board, apart from seed and clock start."""

    name: str
    description: str
    profile: str  # the product profile the shipment is monitored with
    duration_s: float
    period_s: float
    heartbeat_s: float
    shipper: ShipperParams
    ambient: Ambient
    events: tuple[Event, ...]
    probes: tuple[Probe, ...]
    faults: tuple[Fault, ...]
    accelerometer: bool = False  # the board reports its tilt ($CCTLT)
    orientation: tuple[tuple[float, float, float], ...] = ()  # (t, tilt_deg, shock_g) from tip/upright events
    route: Route | None = None  # where the crate travels, for a simulated GPS receiver

    def model(self) -> ShipperModel:
        """The crate's physics."""
        return ShipperModel(self.shipper, self.ambient, self.events)

    def board(
        self,
        seed: int | None,
        epoch_ms: int,
        clock: bool = True,
        period_s: float | None = None,
        heartbeat_s: float | None = None,
    ) -> Board:
        """The simulated board for this scenario (``period_s``/``heartbeat_s`` override the file's)."""
        model = self.model()
        lid = [(e.at_s, e.kind == "lid_open") for e in self.events if e.kind in ("lid_open", "lid_close")]
        heartbeat = self.heartbeat_s if heartbeat_s is None else heartbeat_s
        orientation = self.orientation if self.accelerometer else None
        period = period_s or self.period_s
        spec = BoardSpec(self.probes, period, heartbeat, clock, epoch_ms, self.faults, lid or None, orientation)
        rng = random.Random(seed)  # noqa: S311 -- simulation, not secrets
        return Board(spec, model.temperature, rng, model.ambient.at)


def paced_heartbeat(heartbeat_s: float, speed: float) -> float:
    """The heartbeat interval (simulated s) to use at ``speed``: the scenario's, but at most 5 real seconds.

    Scenarios use sparse heartbeats that suit accelerated runs; in real time an agent
    (whose heartbeat timeout is real time) would think the board had hung.
    """
    if heartbeat_s <= 0:
        return heartbeat_s
    return min(heartbeat_s, REAL_HEARTBEAT_S * speed)


def _shipper(table: Table) -> ShipperParams:
    kind = table.text("kind", choices=SHIPPER_DEFAULTS)
    base = SHIPPER_DEFAULTS[kind]
    changes: dict[str, Any] = {}
    for name in _SHIPPER_NUMBERS:
        value = table.number(name, None, minimum=-273.15, maximum=1e6)
        if value is not None:
            changes[name] = value
    hold = table.duration("hold", None, minimum=60.0)
    if hold is not None:
        changes["hold_days"] = hold / 86_400.0
    charge = table.number("charge", None, minimum=0.0, maximum=1.0)
    if charge is not None:
        changes["charge"] = charge
    start = table.number("start_c", None, minimum=-200.0, maximum=80.0)
    if start is not None:
        changes["start_c"] = start
    for name in ("warm_tau_h", "lid_tau_min", "recovery_tau_min", "tip_factor", "lid_factor"):
        if changes.get(name, 1.0) <= 0:
            raise table.error(name, "must be greater than 0")
    if not 0.0 <= changes.get("coupling", 0.0) <= 1.0:
        raise table.error("coupling", "must be between 0 and 1")
    params = replace(base, **changes)
    if params.reference_ambient_c == params.plateau_c:
        raise table.error("reference_ambient_c", "must differ from plateau_c")
    return params


def _ambient(table: Table) -> Ambient:
    profile = table.text("profile", "constant", choices=[*PRESETS, "custom"])
    offset = table.number("offset_c", 0.0, minimum=-50.0, maximum=50.0)
    if profile == "constant":
        return Ambient(((0.0, table.number("temperature_c", 22.0, minimum=-60.0, maximum=70.0) + offset),), 0.0)
    if profile != "custom":
        return Ambient(PRESETS[profile], 24.0, offset)
    period = table.duration("period", 86_400.0, minimum=0.0) / 3600.0
    points = [
        (point.duration("at", minimum=0.0) / 3600.0, point.number("c", minimum=-60.0, maximum=70.0))
        for point in table.tables("points")
    ]
    try:
        return Ambient(tuple(points), period, offset)
    except ValueError as exc:
        raise table.error("points", str(exc)) from None


Orientation = tuple[tuple[float, float, float], ...]


def _events(tables: list[Table], duration_s: float) -> tuple[tuple[Event, ...], Orientation]:
    """The handling events, and the accelerometer's view of the tip/upright ones: (t, tilt_deg, shock_g)."""
    events, orientation = [], []
    for table in tables:
        kind = table.text("kind", choices=EVENT_KINDS)
        at = table.duration("at", minimum=0.0, maximum=duration_s)
        charge = table.number("charge", None, minimum=0.0, maximum=1.0)
        if charge is not None and kind != "refill":
            raise table.error("charge", f"only refill events take a charge, not {kind}")
        tilt = table.number("tilt_deg", None, minimum=0.0, maximum=180.0)
        shock = table.number("shock_g", None, minimum=0.0, maximum=100.0)
        for key, value in (("tilt_deg", tilt), ("shock_g", shock)):
            if value is not None and kind not in ("tip", "upright"):
                raise table.error(key, f"only tip and upright events take {key}, not {kind}")
        if tilt is not None and (tilt >= 45.0) != (kind == "tip"):
            # the physics knows tipped or upright only: the angle must say the same
            raise table.error("tilt_deg", "a tip leaves the shipper at 45° or more, an upright under 45°")
        events.append(Event(at, kind, 1.0 if charge is None else charge))
        if kind in ("tip", "upright"):
            orientation.append((at, (90.0 if kind == "tip" else 0.0) if tilt is None else tilt, shock or 0.0))
        length = table.duration("duration", None, minimum=1.0)
        if length is not None:
            if kind not in ("lid_open", "tip"):
                raise table.error("duration", f"only lid_open and tip events take a duration, not {kind}")
            events.append(Event(at + length, "lid_close" if kind == "lid_open" else "upright"))
            if kind == "tip":
                orientation.append((at + length, 0.0, 0.0))
    return tuple(events), tuple(sorted(orientation))


def _route(table: Table, duration_s: float) -> Route | None:
    """``[route]``: timed waypoints and the spans without a GPS fix; None when the scenario has none."""
    waypoints = []
    for point in table.tables("waypoints"):
        lat, lon = point.number("lat", minimum=-90.0, maximum=90.0), point.number("lon")
        try:
            here = Position(lat, lon)
        except ValueError as exc:
            raise point.error("lon", str(exc)) from None
        waypoints.append(Waypoint(point.duration("at", minimum=0.0, maximum=duration_s), here, point.text("name", "")))
    spans = []
    for span in table.tables("no_fix"):
        start = span.duration("at", minimum=0.0, maximum=duration_s)
        spans.append(NoFix(start, start + span.duration("duration", minimum=1.0), span.text("reason", "")))
    if not waypoints:
        if spans:
            raise table.error("waypoints", "a route with no_fix spans needs its waypoints")
        return None
    try:
        return Route(tuple(waypoints), tuple(spans))
    except ValueError as exc:
        raise table.error("waypoints", str(exc)) from None


def _probes(tables: list[Table]) -> tuple[Probe, ...]:
    probes = []
    for table in tables:
        probes.append(
            Probe(
                name=table.identifier("name"),
                noise_c=table.number("noise_c", 0.05, minimum=0.0, maximum=50.0),
                resolution_c=table.number("resolution_c", 0.01, minimum=0.01, maximum=10.0),
                offset_c=table.number("offset_c", 0.0, minimum=-50.0, maximum=50.0),
                min_c=table.number("min_c", -200.0, minimum=-273.15),
                max_c=table.number("max_c", 80.0, maximum=1000.0),
                location=table.text("location", "payload", choices=LOCATIONS),
            )
        )
    return tuple(probes)


def _faults(tables: list[Table], probes: tuple[Probe, ...]) -> tuple[Fault, ...]:
    names = {p.name for p in probes}
    faults = []
    for table in tables:
        kind = table.text("kind", choices=FAULT_KINDS)
        start = table.duration("at", minimum=0.0)
        length = table.duration("duration", None, minimum=0.001)
        probe = table.identifier("probe", None)
        if probe is not None and (kind not in PROBE_FAULTS or probe not in names):
            problem = f"{probe!r} is not one of the probes {sorted(names)}" if kind in PROBE_FAULTS else ""
            raise table.error("probe", problem or f"a {kind} fault is about the board, not a probe")
        faults.append(
            Fault(
                kind,
                start,
                math.inf if length is None else start + length,
                probe,
                magnitude_c=table.number("magnitude_c", 0.0, minimum=-100.0, maximum=300.0),
                probability=table.number("probability", 1.0 if kind in ("spikes", "corrupt") else 0.0, 0.0, 1.0),
                supply_mv=table.integer("supply_mv", 4000, minimum=0, maximum=5000),
                reset_mv=table.integer("reset_mv", 4300, minimum=0, maximum=5000),
            )
        )
    return tuple(faults)


def parse_scenario(data: Mapping[str, Any], source: str, profiles: Mapping[str, Profile] | None = None) -> Scenario:
    """Check a parsed scenario file; ``profiles`` (when given) must know the scenario's profile."""
    root = Table(data, source)
    name = root.identifier("name")
    description = root.text("description", "")
    profile = root.identifier("profile")
    if profiles is not None and profile not in profiles:
        raise root.error("profile", f"{profile!r} is not one of the profiles {sorted(profiles)}")
    duration = root.duration("duration", minimum=1.0, maximum=400 * 86_400.0)
    board = root.table("board")
    period = board.duration("period", 60.0, minimum=0.01, maximum=86_400.0)
    heartbeat = board.duration("heartbeat", 300.0, minimum=0.0, maximum=86_400.0)
    accelerometer = board.flag("accelerometer", False)
    shipper = _shipper(root.table("shipper", required=True))
    ambient = _ambient(root.table("ambient"))
    events, orientation = _events(root.tables("events"), duration)
    probes = _probes(root.tables("probes"))
    if not probes:
        raise root.error("probes", "a scenario needs at least one [[probes]] entry")
    if len({p.name for p in probes}) != len(probes):
        raise root.error("probes", "probe names must be unique")
    faults = _faults(root.tables("faults"), probes)
    route = _route(root.table("route"), duration)
    root.finish()
    return Scenario(
        name,
        description,
        profile,
        duration,
        period,
        heartbeat,
        shipper,
        ambient,
        events,
        probes,
        faults,
        accelerometer,
        orientation,
        route,
    )


def read_scenario(path: Path) -> Scenario:
    """Read and check a scenario file; a ConfigError names the file (and key) when it cannot be used."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read the scenario: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None
    return parse_scenario(data, str(path))
