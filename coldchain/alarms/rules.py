"""Rule kinds beyond the plain threshold: what each checks, parsed from a profile's ``[[name.rules]]``.

Each rule is a frozen value; ``coldchain.alarms.evaluators`` holds the evaluators that
apply them to readings in event-time order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from coldchain.position.phases import PhaseRules, parse_phase_rules
from coldchain.sentences import MAX_SHOCK_G
from coldchain.settings.table import Table
from coldchain.wire.alarms import SEVERITIES

__all__ = [
    "CRATE_SENSOR",
    "EXTRA_KINDS",
    "CumulativeRule",
    "ExtraRule",
    "LidRule",
    "OfflineRule",
    "PredictionRule",
    "RateRule",
    "SensorFaultRule",
    "ShockRule",
    "StaleRule",
    "TiltRule",
    "parse_extra_rule",
]

CRATE_SENSOR: Final = "crate"  # the sensor level of alarms about the whole crate
_TEMPERATURE: Final = {"minimum": -273.15, "maximum": 200.0}


@dataclass(frozen=True, slots=True)
class CumulativeRule:
    """Raise once the crate's total time outside [low_c, high_c] over the shipment exceeds ``budget_s``.

    The counter never resets (a budget, as in WHO's and Berlinger's cumulative
    alarms): a raised alarm stays until the shipment ends. A value holds until the
    next reading, at most ``max_hold_s`` (longer gaps are unknown, not counted).
    """

    name: str
    severity: str
    budget_s: float
    low_c: float | None = None
    high_c: float | None = None
    max_hold_s: float = 900.0
    kind: str = "cumulative"

    def outside(self, value_c: float) -> bool:
        """True when ``value_c`` counts against the budget."""
        return (self.low_c is not None and value_c < self.low_c) or (self.high_c is not None and value_c > self.high_c)


@dataclass(frozen=True, slots=True)
class RateRule:
    """Raise while a probe warms faster than ``max_rate_c_per_h`` (least-squares slope over ``window_s``).

    ``delay_s``: the fast warming must persist this long, so the short spike of a
    lid opening (which then cools back) raises nothing.
    """

    name: str
    severity: str
    max_rate_c_per_h: float
    window_s: float = 3600.0
    min_samples: int = 5
    hysteresis_c_per_h: float = 0.0
    delay_s: float = 0.0
    kind: str = "rate_of_rise"


@dataclass(frozen=True, slots=True)
class PredictionRule:
    """Raise when a straight-line fit over ``window_s`` reaches ``target_c`` within ``horizon_s``.

    Only a warming of at least ``min_rate_c_per_h`` counts, so probe noise on a
    steady shipper never predicts anything; the prediction must hold for
    ``delay_s`` (a lid opening's spike does not); clears once the predicted time
    is beyond ``horizon_s + clear_margin_s`` or the warming stops.
    """

    name: str
    severity: str
    target_c: float
    horizon_s: float
    window_s: float = 7200.0
    min_rate_c_per_h: float = 0.5
    min_samples: int = 10
    clear_margin_s: float = 1800.0
    delay_s: float = 0.0
    kind: str = "prediction"


@dataclass(frozen=True, slots=True)
class StaleRule:
    """Raise when an online crate has sent no reading for ``after_s`` (sensor level ``crate``)."""

    name: str
    severity: str
    after_s: float
    kind: str = "stale"


@dataclass(frozen=True, slots=True)
class OfflineRule:
    """Raise when a crate has been offline (its last will) for longer than ``after_s``."""

    name: str
    severity: str
    after_s: float
    kind: str = "offline"


@dataclass(frozen=True, slots=True)
class LidRule:
    """Raise when the lid has been open for longer than ``after_s``."""

    name: str
    severity: str
    after_s: float
    kind: str = "lid"


@dataclass(frozen=True, slots=True)
class SensorFaultRule:
    """Raise when a probe reports OPEN/SHORT/RANGE for ``delay_s``, or repeats one value for ``stuck_s``.

    ``stuck_s`` 0 disables the stuck check; ``clear_delay_s``: good readings must
    last this long before the alarm clears, so a loose connector does not flap.
    """

    name: str
    severity: str
    delay_s: float = 0.0
    clear_delay_s: float = 60.0
    stuck_s: float = 0.0
    kind: str = "sensor_fault"


@dataclass(frozen=True, slots=True)
class TiltRule:
    """Raise when the crate's axis stays more than ``limit_deg`` from vertical for ``delay_s``.

    A dry shipper on its side loses its nitrogen several times faster; a crate
    rocking on a truck bed, or tipped for a moment while loaded, raises nothing.
    Clears once the tilt is back below ``limit_deg - hysteresis_deg``.
    """

    name: str
    severity: str
    limit_deg: float
    delay_s: float = 0.0
    hysteresis_deg: float = 5.0
    kind: str = "tilt"
    phases: PhaseRules = field(default_factory=PhaseRules)  # off, or another delay, in a phase


@dataclass(frozen=True, slots=True)
class ShockRule:
    """Raise at its own time for a shock of more than ``limit_g``; the crate's next reading clears it (it is over)."""

    name: str
    severity: str
    limit_g: float
    kind: str = "shock"
    phases: PhaseRules = field(default_factory=PhaseRules)  # silenced at origin, in transit or at destination


ExtraRule = (
    CumulativeRule | RateRule | PredictionRule | StaleRule | OfflineRule | LidRule | SensorFaultRule | TiltRule
    | ShockRule
)  # fmt: skip
PHASED_KINDS: Final = ("tilt", "shock")  # the rules a shipment's phase can silence or delay
EXTRA_KINDS: Final = (
    "cumulative", "rate_of_rise", "prediction", "stale", "offline", "lid", "sensor_fault", "tilt", "shock",
)  # fmt: skip


def _cumulative(t: Table, name: str, severity: str) -> CumulativeRule:
    rule = CumulativeRule(
        name,
        severity,
        budget_s=t.number("budget_s", minimum=0.0),
        low_c=t.number("low_c", None, **_TEMPERATURE),
        high_c=t.number("high_c", None, **_TEMPERATURE),
        max_hold_s=t.number("max_hold_s", 900.0, minimum=1.0),
    )
    if rule.low_c is None and rule.high_c is None:
        raise t.error("high_c", "a cumulative rule needs low_c, high_c or both")
    if rule.low_c is not None and rule.high_c is not None and rule.low_c >= rule.high_c:
        raise t.error("low_c", f"{rule.low_c} must be below high_c {rule.high_c}")
    return rule


def _rate(t: Table, name: str, severity: str) -> RateRule:
    rule = RateRule(
        name,
        severity,
        max_rate_c_per_h=t.number("max_rate_c_per_h", minimum=0.0),
        window_s=t.number("window_s", 3600.0, minimum=1.0),
        min_samples=t.integer("min_samples", 5, minimum=2),
        hysteresis_c_per_h=t.number("hysteresis_c_per_h", 0.0, minimum=0.0),
        delay_s=t.number("delay_s", 0.0, minimum=0.0),
    )
    if rule.hysteresis_c_per_h > rule.max_rate_c_per_h:
        raise t.error("hysteresis_c_per_h", "must not exceed max_rate_c_per_h")
    return rule


def _prediction(t: Table, name: str, severity: str) -> PredictionRule:
    return PredictionRule(
        name,
        severity,
        target_c=t.number("target_c", **_TEMPERATURE),
        horizon_s=t.number("horizon_s", minimum=1.0),
        window_s=t.number("window_s", 7200.0, minimum=1.0),
        min_rate_c_per_h=t.number("min_rate_c_per_h", 0.5, minimum=0.001),
        min_samples=t.integer("min_samples", 10, minimum=2),
        clear_margin_s=t.number("clear_margin_s", 1800.0, minimum=0.0),
        delay_s=t.number("delay_s", 0.0, minimum=0.0),
    )


def _fault(t: Table, name: str, severity: str) -> SensorFaultRule:
    return SensorFaultRule(
        name,
        severity,
        delay_s=t.number("delay_s", 0.0, minimum=0.0),
        clear_delay_s=t.number("clear_delay_s", 60.0, minimum=0.0),
        stuck_s=t.number("stuck_s", 0.0, minimum=0.0),
    )


def _tilt(t: Table, name: str, severity: str) -> TiltRule:
    rule = TiltRule(
        name,
        severity,
        limit_deg=t.number("limit_deg", minimum=0.0, maximum=180.0),
        delay_s=t.number("delay_s", 0.0, minimum=0.0),
        hysteresis_deg=t.number("hysteresis_deg", 5.0, minimum=0.0),
        phases=parse_phase_rules(t, has_delay=True),
    )
    if rule.hysteresis_deg > rule.limit_deg:
        raise t.error("hysteresis_deg", "must not exceed limit_deg")
    return rule


def parse_extra_rule(t: Table, kind: str) -> ExtraRule:
    """One ``[[profile.rules]]`` table of a kind in ``EXTRA_KINDS`` (its ``kind`` already read)."""
    name = t.identifier("name")
    severity = t.text("severity", choices=SEVERITIES)
    if "phases" in t and kind not in PHASED_KINDS:
        raise t.error("phases", f"only {' and '.join(PHASED_KINDS)} rules take phases")
    if kind == "cumulative":
        return _cumulative(t, name, severity)
    if kind == "rate_of_rise":
        return _rate(t, name, severity)
    if kind == "prediction":
        return _prediction(t, name, severity)
    if kind == "sensor_fault":
        return _fault(t, name, severity)
    if kind == "tilt":
        return _tilt(t, name, severity)
    if kind == "shock":
        limit_g = t.number("limit_g", minimum=0.0, maximum=MAX_SHOCK_G)
        return ShockRule(name, severity, limit_g, phases=parse_phase_rules(t, has_delay=False))
    after_s = t.number("after_s", minimum=0.0)
    if kind == "stale":
        return StaleRule(name, severity, after_s)
    if kind == "offline":
        return OfflineRule(name, severity, after_s)
    return LidRule(name, severity, after_s)
