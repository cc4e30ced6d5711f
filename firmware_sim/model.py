"""Crate physics: the temperature a probe sees, as a pure function of parameters and time.

Time ``t_s`` is simulated seconds since the shipment started (board boot).

Every shipper type is the same two-part model with different numbers:

- a **buffer** (liquid nitrogen in the absorbent, dry ice, phase-change packs, an
  active unit's battery) holds the payload at a plateau temperature while it lasts.
  Heat leaking in from the ambient uses it up at a rate proportional to the
  temperature difference; ``hold_days`` is how long a full charge lasts at
  ``reference_ambient_c``. A tipped shipper loses nitrogen ``tip_factor`` times
  faster; an open lid uses the buffer ``lid_factor`` times faster.
- the **payload** follows a first-order lag toward a target: the plateau (plus a
  small ``coupling`` share of the ambient difference) while the buffer lasts, the
  ambient once it is gone (time constant ``warm_tau_h``), the ambient with
  ``lid_tau_min`` while the lid is open, and back to the plateau with
  ``recovery_tau_min`` after it closes.
- a **refill** (re-icing a dry-ice box, topping up a dry shipper's nitrogen) sets the
  buffer to the event's ``charge``: the payload then cools back toward the plateau with
  ``recovery_tau_min``.

Buffers differ in what cold ambient does: a cryogen is never recharged by the cold (only by a refill)
(``cryogen``); phase-change packs refreeze below their melting point and protect
against cold as much as against heat (``pcm``); an active unit spends battery on
heating and cooling alike (``active``).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

from firmware_sim.ambient import Ambient

__all__ = ["BUFFER_MODES", "SHIPPER_DEFAULTS", "Event", "Ramp", "ShipperModel", "ShipperParams", "State"]

BUFFER_MODES = ("cryogen", "pcm", "active")
EVENT_KINDS = ("lid_open", "lid_close", "tip", "upright", "refill")
DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Ramp:
    """Steady at ``start_c``, then warming linearly at ``rate_c_per_min`` from ``after_s`` on.

    The walking skeleton's trace: an excursion on demand, no physics.
    """

    start_c: float
    rate_c_per_min: float = 0.0
    after_s: float = 0.0

    def temperature(self, t_s: float) -> float:
        """True temperature at ``t_s``."""
        return self.start_c + self.rate_c_per_min * max(0.0, t_s - self.after_s) / 60.0


@dataclass(frozen=True, slots=True)
class ShipperParams:
    """The numbers of one shipper; ``SHIPPER_DEFAULTS`` holds typical ones per kind."""

    kind: str
    buffer: str  # one of BUFFER_MODES
    plateau_c: float  # payload temperature with a full buffer
    plateau_empty_c: float  # ...and with an almost empty one (LN2 vapour warms as the charge runs low)
    hold_days: float  # a full charge lasts this long at reference_ambient_c, upright, lid closed
    reference_ambient_c: float = 22.0
    charge: float = 1.0  # buffer at the start, 0..1 (for pcm: the frozen fraction)
    coupling: float = 0.0  # share of (ambient - plateau) that reaches the payload while buffered
    warm_tau_h: float = 24.0  # payload time constant toward ambient once the buffer is gone
    lid_tau_min: float = 30.0  # ...toward ambient while the lid is open
    recovery_tau_min: float = 20.0  # ...back to the plateau after the lid closes
    tip_factor: float = 1.0  # buffer used this many times faster while tipped
    lid_factor: float = 3.0  # ...and while the lid is open
    start_c: float | None = None  # payload at t=0 (default: where the buffer holds it)

    def __post_init__(self) -> None:
        if self.buffer not in BUFFER_MODES:
            raise ValueError(f"buffer {self.buffer!r} is not one of {BUFFER_MODES}")
        if self.reference_ambient_c == self.plateau_c:
            raise ValueError("reference_ambient_c must differ from plateau_c")


SHIPPER_DEFAULTS: dict[str, ShipperParams] = {
    # vapour-phase LN2 dry shipper: ~-190 °C full, ~-180 °C near empty, ~10 days static hold
    "ln2_dry_shipper": ShipperParams(
        "ln2_dry_shipper", "cryogen", -190.0, -180.0, 10.0, warm_tau_h=24.0, recovery_tau_min=5.0, tip_factor=4.0
    ),
    # dry ice sublimes at -78.5 °C; hold_days = kg of ice / kg sublimated per day at 22 °C
    "dry_ice": ShipperParams("dry_ice", "cryogen", -78.0, -78.0, 4.0, warm_tau_h=8.0, lid_tau_min=20.0),
    # passive 2-8 °C box with +5 °C phase-change packs
    "pcm_2_8": ShipperParams(
        "pcm_2_8", "pcm", 5.0, 5.0, 4.0, charge=0.6, coupling=0.06, warm_tau_h=6.0, lid_tau_min=30.0
    ),
    # active 15-25 °C container on battery
    "controlled_ambient": ShipperParams(
        "controlled_ambient", "active", 20.0, 20.0, 3.0, reference_ambient_c=35.0, coupling=0.1, warm_tau_h=4.0
    ),
}


@dataclass(frozen=True, slots=True)
class Event:
    """Something done to the crate at ``at_s``: ``lid_open``, ``lid_close``, ``tip``, ``upright``, ``refill``.

    ``charge`` is the buffer a ``refill`` leaves (0..1); other kinds ignore it.
    """

    at_s: float
    kind: str
    charge: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"event kind {self.kind!r} is not one of {EVENT_KINDS}")
        if not 0.0 <= self.charge <= 1.0:
            raise ValueError(f"refill charge {self.charge} is not between 0 and 1")


@dataclass(frozen=True, slots=True)
class State:
    """The crate at one instant."""

    t_s: float
    payload_c: float
    ambient_c: float
    charge: float  # buffer left, 0..1
    lid_open: bool
    tipped: bool


@dataclass
class ShipperModel:
    """Payload temperature over time for one shipper, ambient and event list.

    Integrated once, forward, in fixed steps of ``step_s`` (exact exponential
    update, stable for any step) and remembered, so ``temperature(t)`` is a pure
    function of the parameters and ``t`` that costs a lookup after the first call.
    """

    params: ShipperParams
    ambient: Ambient
    events: Sequence[Event] = ()
    step_s: float = 10.0
    _payload: array[float] = field(default_factory=lambda: array("d"), init=False, repr=False)
    _charge: array[float] = field(default_factory=lambda: array("d"), init=False, repr=False)

    def __post_init__(self) -> None:
        self.events = tuple(sorted(self.events, key=lambda e: e.at_s))
        start = self._buffered(0.0, self.params.charge, self.ambient.at(0.0))
        self._payload.append(start if self.params.start_c is None else self.params.start_c)
        self._charge.append(self.params.charge)

    def flags_at(self, t_s: float) -> tuple[bool, bool]:
        """(lid open, tipped) at ``t_s``: the last lid and tip events at or before it decide."""
        lid = tipped = False
        for event in self.events:
            if event.at_s > t_s:
                break
            if event.kind in ("lid_open", "lid_close"):
                lid = event.kind == "lid_open"
            elif event.kind in ("tip", "upright"):
                tipped = event.kind == "tip"
        return lid, tipped

    def _buffered(self, t_s: float, charge: float, ambient_c: float) -> float:
        p = self.params
        plateau = p.plateau_empty_c + (p.plateau_c - p.plateau_empty_c) * charge
        return plateau + p.coupling * (ambient_c - plateau)

    def _exhausted(self, charge: float, ambient_c: float) -> bool:
        p = self.params
        if p.buffer == "pcm":
            return (charge <= 0.0 and ambient_c > p.plateau_c) or (charge >= 1.0 and ambient_c < p.plateau_c)
        return charge <= 0.0

    def _use(self, ambient_c: float, lid: bool, tipped: bool) -> float:
        """Buffer fraction used per second (negative: a pcm refreezing)."""
        p = self.params
        drive = (ambient_c - p.plateau_c) / (p.reference_ambient_c - p.plateau_c)
        if p.buffer == "cryogen":
            drive = max(0.0, drive)
        elif p.buffer == "active":
            drive = abs(drive)
        rate = drive / (p.hold_days * DAY)
        if tipped:
            rate *= p.tip_factor
        if lid:
            rate *= p.lid_factor
        return rate

    def _extend(self, index: int) -> None:
        p = self.params
        dt = self.step_s
        while len(self._payload) <= index:
            i = len(self._payload) - 1
            t = i * dt
            mid = t + dt / 2
            ambient_c = self.ambient.at(mid)
            lid, tipped = self.flags_at(mid)
            charge = self._refilled(t, t + dt, self._charge[i])
            charge = min(1.0, max(0.0, charge - self._use(ambient_c, lid, tipped) * dt))
            if lid:
                target, tau = ambient_c, p.lid_tau_min * 60
            elif self._exhausted(charge, ambient_c):
                target, tau = ambient_c, p.warm_tau_h * 3600
            else:
                target, tau = self._buffered(mid, charge, ambient_c), p.recovery_tau_min * 60
            payload = self._payload[i]
            self._payload.append(payload + (target - payload) * (1.0 - math.exp(-dt / tau)))
            self._charge.append(charge)

    def _refilled(self, start_s: float, end_s: float, charge: float) -> float:
        """The buffer after the last refill in [start_s, end_s), or ``charge`` when there was none."""
        for event in self.events:
            if event.kind == "refill" and start_s <= event.at_s < end_s:
                charge = event.charge
        return charge

    def _interpolate(self, series: array[float], t_s: float) -> float:
        position = max(0.0, t_s) / self.step_s
        i = int(position)
        self._extend(i + 1)
        fraction = position - i
        return series[i] + (series[i + 1] - series[i]) * fraction

    def temperature(self, t_s: float) -> float:
        """Payload °C at simulated second ``t_s``."""
        return self._interpolate(self._payload, t_s)

    def state(self, t_s: float) -> State:
        """Everything about the crate at ``t_s``."""
        lid, tipped = self.flags_at(t_s)
        return State(
            t_s, self.temperature(t_s), self.ambient.at(t_s), self._interpolate(self._charge, t_s), lid, tipped
        )

    def depleted_at(self, horizon_s: float) -> float | None:
        """When the buffer first ran out (charge reached 0), if before ``horizon_s``."""
        self._extend(int(horizon_s / self.step_s) + 1)
        for i, charge in enumerate(self._charge):
            if charge <= 0.0:
                return i * self.step_s
            if i * self.step_s > horizon_s:
                break
        return None
