"""One crate's alarm rules together: telemetry, status and lid events in, alarm transitions out.

The gateway keeps one ``CrateMonitor`` per crate, feeds it in the order messages
arrive (a crate's telemetry is in event-time order, backlogs included) and calls
``tick`` about once a second for the rules that fire on silence. Its whole state
is a JSON-able dict, to persist with the alarm book.
"""

from __future__ import annotations

from typing import Any

from coldchain.alarms.evaluators import (
    CumulativeEvaluator,
    Evaluator,
    LidEvaluator,
    OfflineEvaluator,
    SensorFaultEvaluator,
    StaleEvaluator,
    ThresholdEvaluator,
)
from coldchain.alarms.motion import ShockEvaluator, TiltEvaluator
from coldchain.alarms.rules import (
    CumulativeRule,
    LidRule,
    OfflineRule,
    PredictionRule,
    RateRule,
    SensorFaultRule,
    ShockRule,
    StaleRule,
    TiltRule,
)
from coldchain.alarms.transition import AlarmTransition
from coldchain.alarms.trend import PredictionEvaluator, RateEvaluator
from coldchain.profiles import Profile
from coldchain.wire import Telemetry

__all__ = ["CrateMonitor"]

ProbeEvaluator = ThresholdEvaluator | RateEvaluator | PredictionEvaluator


class CrateMonitor:
    """Every rule of a crate's profile, on every probe the crate reports."""

    def __init__(self, crate: str, profile: Profile) -> None:
        self.crate = crate
        self.profile = profile
        self.switched_on_ts: int | None = None
        self.last_ts: int | None = None  # event time of the newest reading evaluated
        self.last_arrival: int | None = None  # ...and when it arrived
        self.out_of_order = 0  # readings older than ones already evaluated: stored, but not evaluated
        extra = profile.extra_rules
        self.cumulative = [CumulativeEvaluator(r) for r in extra if isinstance(r, CumulativeRule)]
        self.stale = [StaleEvaluator(r) for r in extra if isinstance(r, StaleRule)]
        self.offline = [OfflineEvaluator(r) for r in extra if isinstance(r, OfflineRule)]
        self.lids = [LidEvaluator(r) for r in extra if isinstance(r, LidRule)]
        self.tilts = [TiltEvaluator(r) for r in extra if isinstance(r, TiltRule)]
        self.shocks = [ShockEvaluator(r) for r in extra if isinstance(r, ShockRule)]
        self.probes: dict[str, list[ProbeEvaluator]] = {}
        self.faults: dict[str, list[SensorFaultEvaluator]] = {}
        self._pending_state: dict[str, Any] = {}  # restored state of probes not yet seen again

    def _probe(self, sensor: str) -> tuple[list[ProbeEvaluator], list[SensorFaultEvaluator]]:
        if sensor not in self.probes:
            evaluators: list[ProbeEvaluator] = [ThresholdEvaluator(r, sensor) for r in self.profile.rules]
            for rule in self.profile.extra_rules:
                if isinstance(rule, RateRule):
                    evaluators.append(RateEvaluator(rule, sensor))
                elif isinstance(rule, PredictionRule):
                    evaluators.append(PredictionEvaluator(rule, sensor))
            faults = [
                SensorFaultEvaluator(r, sensor) for r in self.profile.extra_rules if isinstance(r, SensorFaultRule)
            ]
            saved = self._pending_state.pop(sensor, {})
            for evaluator in [*evaluators, *faults]:
                if evaluator.rule.name in saved:
                    evaluator.restore(saved[evaluator.rule.name])
            self.probes[sensor], self.faults[sensor] = evaluators, faults
        return self.probes[sensor], self.faults[sensor]

    def switched_on(self, ts: int) -> None:
        """The crate was powered on at event time ``ts``: value rules wait ``start_delay_s`` for probes to settle."""
        self.switched_on_ts = ts

    def settling(self, ts: int) -> bool:
        """True while readings at ``ts`` fall inside the start delay."""
        on = self.switched_on_ts
        return on is not None and on <= ts < on + self.profile.start_delay_s * 1000

    def feed(self, telemetry: Telemetry, arrival_ms: int) -> list[AlarmTransition]:
        """Evaluate one telemetry message; ``arrival_ms`` is when the gateway received it."""
        out: list[AlarmTransition] = []
        for stale in self.stale:
            out += stale.reading(arrival_ms)
        ts, seq = telemetry.ts, telemetry.seq
        if self.last_ts is not None and ts < self.last_ts:
            self.out_of_order += 1
            return out
        self.last_ts, self.last_arrival = ts, arrival_ms
        for lid in self.lids:
            out += lid.advance(ts)
        for tilt in self.tilts:
            out += tilt.advance(ts)
        for shock in self.shocks:
            out += shock.reading(ts)
        settling = self.settling(ts)
        for reading in telemetry.readings:
            evaluators, faults = self._probe(reading.sensor)
            for fault in faults:
                out += fault.reading(ts, seq, reading.value_c, reading.fault)
            if reading.value_c is None or settling:
                continue
            for evaluator in evaluators:
                out += evaluator.reading(ts, seq, reading.value_c)
        if not settling:
            values = {r.sensor: r.value_c for r in telemetry.readings}
            for cumulative in self.cumulative:
                out += cumulative.tick(ts, seq, values)
        return out

    def status(self, online: bool, at_ms: int) -> list[AlarmTransition]:
        """The crate's retained status said online/offline; ``at_ms`` is when the gateway received it."""
        out: list[AlarmTransition] = []
        for stale in self.stale:
            out += stale.status(online, at_ms)
        for offline in self.offline:
            out += offline.status(online, at_ms)
        return out

    def lid(self, is_open: bool, ts: int) -> list[AlarmTransition]:
        """The lid opened or closed at event time ``ts``."""
        out: list[AlarmTransition] = []
        for lid in self.lids:
            out += lid.lid(is_open, ts)
        return out

    def orientation(self, tilt_deg: float, ts: int) -> list[AlarmTransition]:
        """The crate reported its tilt from vertical at event time ``ts``."""
        out: list[AlarmTransition] = []
        for tilt in self.tilts:
            out += tilt.orientation(tilt_deg, ts)
        return out

    def shock(self, shock_g: float, tilt_deg: float, ts: int) -> list[AlarmTransition]:
        """The crate reported a shock at event time ``ts``, and how it stood after it."""
        out: list[AlarmTransition] = []
        for shock in self.shocks:
            out += shock.shock(shock_g, ts)
        return out + self.orientation(tilt_deg, ts)

    def enter_phase(self, phase: str, ts: int) -> list[AlarmTransition]:
        """A fix of event time ``ts`` puts the crate in shipment ``phase`` (coldchain.position.phases)."""
        out: list[AlarmTransition] = []
        for tilt in self.tilts:
            out += tilt.enter_phase(phase, ts)
        for shock in self.shocks:
            out += shock.enter_phase(phase, ts)
        return out

    def event_time_at(self, now_ms: int) -> int | None:
        """The crate's event time at wall time ``now_ms``: its newest reading's, plus the time since it arrived.

        While a backlog replays this stays in the backlog's past, so nothing is
        judged against a present the data has not reached yet.
        """
        if self.last_ts is None or self.last_arrival is None:
            return None
        return self.last_ts + max(0, now_ms - self.last_arrival)

    def tick(self, now_ms: int) -> list[AlarmTransition]:
        """Wall-clock tick: stale data, crate offline, and a lid left open or a crate tipped while no reading comes."""
        out: list[AlarmTransition] = []
        event_now = self.event_time_at(now_ms)
        if event_now is not None:
            for lid in self.lids:
                out += lid.advance(event_now)
            for tilt in self.tilts:
                out += tilt.advance(event_now)
        for stale in self.stale:
            out += stale.tick(now_ms)
        for offline in self.offline:
            out += offline.tick(now_ms)
        return out

    def _crate_evaluators(self) -> list[Evaluator]:
        return [*self.cumulative, *self.stale, *self.offline, *self.lids, *self.tilts, *self.shocks]

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state of every rule on every probe."""
        probes = dict(self._pending_state)
        for sensor, evaluators in self.probes.items():
            probes[sensor] = {e.rule.name: e.snapshot() for e in [*evaluators, *self.faults[sensor]]}
        return {
            "switched_on_ts": self.switched_on_ts,
            "last_ts": self.last_ts,
            "last_arrival": self.last_arrival,
            "crate": {e.rule.name: e.snapshot() for e in self._crate_evaluators()},
            "probes": probes,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from ``snapshot()`` (rules no longer in the profile are ignored)."""
        self.switched_on_ts = state["switched_on_ts"]
        self.last_ts = state["last_ts"]
        self.last_arrival = state.get("last_arrival")
        for evaluator in self._crate_evaluators():
            saved = state["crate"].get(evaluator.rule.name)
            if saved is not None:
                evaluator.restore(saved)
        self.probes.clear()
        self.faults.clear()
        self._pending_state = dict(state["probes"])
