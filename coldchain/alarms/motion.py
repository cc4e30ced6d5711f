"""Evaluators of how a crate stands and what hit it: ``orientation`` and ``shock`` events in, alarm transitions out.

The agent reports a tilt only when it changes (edge/probes/orientation.py), so a tipped
crate says so once: like a lid left open, the tilt's delay runs on the crate's event
time, advanced by its readings and by the gateway's ticks.
"""

from __future__ import annotations

from coldchain.alarms.evaluators import _ACTIVE, _IDLE, Evaluator
from coldchain.alarms.rules import CRATE_SENSOR, ShockRule, TiltRule
from coldchain.alarms.transition import ACTIVE, CLEARED, AlarmTransition
from coldchain.position.phases import TRANSIT

__all__ = ["ShockEvaluator", "TiltEvaluator"]


class TiltEvaluator(Evaluator):
    """The crate has stood more than ``limit_deg`` from vertical for ``delay_s``, in event time."""

    _STATE = ("tilted", "tilt_deg", "trip_phase")
    __slots__ = ("rule", "tilt_deg", "tilted", "trip_phase")

    def __init__(self, rule: TiltRule) -> None:
        super().__init__(CRATE_SENSOR)
        self.rule = rule
        self.tilted: int | None = None  # event time the tilt went above the limit
        self.tilt_deg: float | None = None  # the latest tilt reported
        self.trip_phase: str = TRANSIT  # the shipment's phase (position.phases), which may silence or delay it

    def _transition(self, state: str, ts: int, detail: str = "") -> AlarmTransition:
        rule = self.rule
        return AlarmTransition(rule.name, rule.kind, rule.severity, self.sensor, state, ts, self._started,
                               value_c=None, detail=detail)  # fmt: skip

    def orientation(self, tilt_deg: float, ts: int) -> list[AlarmTransition]:
        """The crate reported ``tilt_deg`` from vertical at event time ``ts``."""
        rule = self.rule
        out = self.advance(ts)  # a backlog may hold a long tilt whose end is all we see
        self.tilt_deg = tilt_deg
        if tilt_deg > rule.limit_deg:
            if self.tilted is None:
                self.tilted = ts
            return out
        if self.active and tilt_deg >= rule.limit_deg - rule.hysteresis_deg:
            return out  # near the limit: a raised alarm holds, so a crate leaning on it does not flap
        self.tilted = None
        if self.active:
            self._phase = _IDLE
            out.append(self._transition(CLEARED, ts))
        return out

    def advance(self, ts: int) -> list[AlarmTransition]:
        """Event time has reached ``ts`` (a reading or event of this crate)."""
        tilted = self.tilted
        override = self.rule.phases.get(self.trip_phase)
        delay_s = self.rule.delay_s if override.delay_s is None else override.delay_s
        delay_ms = round(delay_s * 1000)
        if self.active or override.off or tilted is None or ts - tilted < delay_ms:
            return []
        self._phase, self._started = _ACTIVE, tilted
        detail = f"tilted {self.tilt_deg:.0f}° from vertical for {delay_s / 60:g} min"
        # dated from when it had lasted too long, which a late backlog may report well after the fact
        return [self._transition(ACTIVE, tilted + delay_ms, detail)]

    def enter_phase(self, phase: str, ts: int) -> list[AlarmTransition]:
        """The crate's fix of event time ``ts`` puts it in ``phase``: the phase it leaves judges up to ``ts``.

        A tilt the phase left silenced counts its delay from ``ts``: the crate was laid down where
        that was expected, and only staying down after it left counts. A raised alarm stays raised.
        """
        if phase == self.trip_phase:
            return []
        out = self.advance(ts)
        if self.rule.phases.get(self.trip_phase).off and self.tilted is not None and not self.active:
            self.tilted = max(self.tilted, ts)
        self.trip_phase = phase
        return out + self.advance(ts)


class ShockEvaluator(Evaluator):
    """A shock above ``limit_g``, raised at the shock's own time; the crate's next reading after it clears it.

    The jolt is over when it is reported: a reading after it says the crate came through
    reporting. Clearing at the shock's own instant would overwrite its raise in InfluxDB
    (one series, one timestamp), and ticks are not used as their event time is the gateway's guess.
    """

    _STATE = ("shock_ts", "trip_phase")
    __slots__ = ("rule", "shock_ts", "trip_phase")

    def __init__(self, rule: ShockRule) -> None:
        super().__init__(CRATE_SENSOR)
        self.rule = rule
        self.shock_ts: int | None = None  # event time of the raised shock
        self.trip_phase: str = TRANSIT  # the shipment's phase (coldchain.position.phases), which may silence it

    def _transition(self, state: str, ts: int, detail: str = "") -> AlarmTransition:
        rule = self.rule
        return AlarmTransition(rule.name, rule.kind, rule.severity, self.sensor, state, ts, self._started,
                               detail=detail)  # fmt: skip

    def shock(self, shock_g: float, ts: int) -> list[AlarmTransition]:
        """The crate reported a shock of ``shock_g`` at event time ``ts``."""
        rule = self.rule
        if shock_g <= rule.limit_g or rule.phases.get(self.trip_phase).off:
            return []
        self._phase, self._started, self.shock_ts = _ACTIVE, ts, ts
        return [self._transition(ACTIVE, ts, f"shock of {shock_g:.1f} g above {rule.limit_g:g} g")]

    def enter_phase(self, phase: str, ts: int) -> list[AlarmTransition]:
        """The crate's fix of event time ``ts`` puts it in ``phase`` (shocks after it are judged there)."""
        self.trip_phase = phase
        return []

    def reading(self, ts: int) -> list[AlarmTransition]:
        """A reading of event time ``ts``: one after the shock clears it."""
        if self.shock_ts is None or ts <= self.shock_ts:
            return []
        self._phase, self.shock_ts = _IDLE, None
        return [self._transition(CLEARED, ts)]
