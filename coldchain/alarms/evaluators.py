"""Rule evaluators: readings, status and lid events in, alarm transitions out.

Value rules are fed readings in event-time order and keep no clock of their own;
time-driven rules (stale, offline) take an explicit ``tick(now_ms)``. Every
evaluator's state is a JSON-able dict (``snapshot``/``restore``), so a restarted
gateway resumes pending delays, fit windows and cumulative budgets where it stopped.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from coldchain.alarms.rules import (
    CRATE_SENSOR,
    CumulativeRule,
    LidRule,
    OfflineRule,
    SensorFaultRule,
    StaleRule,
)
from coldchain.alarms.threshold import ThresholdTracker
from coldchain.alarms.transition import ACTIVE, CLEARED, AlarmTransition
from coldchain.profiles import ThresholdRule

__all__ = [
    "CumulativeEvaluator",
    "Evaluator",
    "LidEvaluator",
    "OfflineEvaluator",
    "SensorFaultEvaluator",
    "StaleEvaluator",
    "ThresholdEvaluator",
]

MS_PER_H: Final = 3_600_000
_IDLE, _PENDING, _ACTIVE, _CLEARING = range(4)


class Evaluator:
    """Base of every evaluator: a delayed on/off machine, and snapshot/restore of the names in ``_STATE``."""

    _STATE: ClassVar[tuple[str, ...]] = ()
    rule: Any  # the rule evaluated (set by each subclass, which holds it in its own slot)
    __slots__ = ("_phase", "_since", "_started", "sensor")

    def __init__(self, sensor: str) -> None:
        self.sensor = sensor
        self._phase = _IDLE
        self._since = 0
        self._started = 0

    @property
    def active(self) -> bool:
        """True while this rule's alarm is raised."""
        return self._phase in (_ACTIVE, _CLEARING)

    def _debounce(self, condition: bool, ts: int, delay_ms: float, clear_delay_ms: float) -> str | None:
        """Raise once ``condition`` held ``delay_ms``; clear once it was gone ``clear_delay_ms``."""
        phase = self._phase
        if phase in (_IDLE, _PENDING):
            if not condition:
                self._phase = _IDLE
                return None
            if phase == _IDLE:
                self._since = ts
            if ts - self._since >= delay_ms:
                self._phase, self._started = _ACTIVE, self._since
                return ACTIVE
            self._phase = _PENDING
            return None
        if condition:
            self._phase = _ACTIVE
            return None
        if phase == _ACTIVE:
            self._since = ts
        if ts - self._since >= clear_delay_ms:
            self._phase = _IDLE
            return CLEARED
        self._phase = _CLEARING
        return None

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state."""
        state = {"phase": self._phase, "since": self._since, "started": self._started}
        for name in self._STATE:
            value = getattr(self, name)
            state[name] = value.snapshot() if hasattr(value, "snapshot") else value
        return state

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from ``snapshot()``."""
        self._phase, self._since, self._started = int(state["phase"]), int(state["since"]), int(state["started"])
        for name in self._STATE:
            if name not in state:
                continue  # saved by a version without it: it keeps its initial value
            current = getattr(self, name)
            if hasattr(current, "restore"):
                current.restore(state[name])
            else:
                setattr(self, name, state[name])


class ThresholdEvaluator(Evaluator):
    """High/low limit with delay and hysteresis: ``ThresholdTracker`` behind the common interface."""

    __slots__ = ("rule", "tracker")

    def __init__(self, rule: ThresholdRule, sensor: str) -> None:
        super().__init__(sensor)
        self.rule = rule
        self.tracker = ThresholdTracker(rule, sensor)

    @property
    def active(self) -> bool:
        """True while the limit's alarm is raised."""
        return self.tracker.active

    def reading(self, ts: int, seq: int, value_c: float) -> list[AlarmTransition]:
        """Account for one good reading."""
        t = self.tracker.feed(value_c, ts, seq)
        return [] if t is None else [t]

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state."""
        return self.tracker.snapshot()

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from ``snapshot()``."""
        self.tracker.restore(state)


class SensorFaultEvaluator(Evaluator):
    """A probe reporting OPEN/SHORT/RANGE, or repeating one value for ``stuck_s`` (a frozen reading)."""

    _STATE = ("stuck_since", "stuck_value", "fault")
    __slots__ = ("fault", "rule", "stuck_since", "stuck_value")

    def __init__(self, rule: SensorFaultRule, sensor: str) -> None:
        super().__init__(sensor)
        self.rule = rule
        self.stuck_value: float | None = None
        self.stuck_since = 0
        self.fault: str | None = None

    def reading(self, ts: int, seq: int, value_c: float | None, fault: str | None) -> list[AlarmTransition]:
        """Account for one reading, good (``value_c``) or faulty (``fault``)."""
        rule = self.rule
        stuck = False
        if fault is None and rule.stuck_s > 0:
            if value_c != self.stuck_value:
                self.stuck_value, self.stuck_since = value_c, ts
            stuck = ts - self.stuck_since >= rule.stuck_s * 1000
        elif fault is not None:
            self.stuck_value = None
        condition = fault is not None or stuck
        if condition and not self.active:
            self.fault = fault or "STUCK"
        # a stuck probe has already been stuck for stuck_s: no further delay
        change = self._debounce(condition, ts, 0 if stuck else rule.delay_s * 1000, rule.clear_delay_s * 1000)
        if change is None:
            return []
        detail = ""
        if change == ACTIVE:
            detail = f"probe reports {self.fault}"
            if self.fault == "STUCK":
                detail = f"probe stuck at {value_c} °C for {(ts - self.stuck_since) / 1000:.0f} s"
        return [
            AlarmTransition(
                rule.name, rule.kind, rule.severity, self.sensor, change, ts, self._started, seq, value_c, None, detail
            )
        ]


class CumulativeEvaluator(Evaluator):
    """Total time any probe of the crate was out of range, against the shipment's budget; never resets."""

    _STATE = ("used_ms", "last_ts", "outside", "latest")
    __slots__ = ("last_ts", "latest", "outside", "rule", "used_ms")

    def __init__(self, rule: CumulativeRule) -> None:
        super().__init__(CRATE_SENSOR)
        self.rule = rule
        self.used_ms = 0.0
        self.last_ts: int | None = None
        self.outside = False
        self.latest: dict[str, list[float]] = {}  # sensor -> [ts, value] of its last good reading

    def tick(self, ts: int, seq: int, values: dict[str, float | None]) -> list[AlarmTransition]:
        """Account for one telemetry message: the values of the crate's probes at ``ts`` (None: fault)."""
        rule = self.rule
        hold_ms = rule.max_hold_s * 1000
        out: list[AlarmTransition] = []
        if self.last_ts is not None and ts > self.last_ts and self.outside:
            before = self.used_ms
            self.used_ms += min(ts - self.last_ts, hold_ms)
            budget_ms = rule.budget_s * 1000
            if not self.active and self.used_ms > budget_ms:
                # the budget ran out inside the held span: date the alarm from that moment
                self._phase, self._started = _ACTIVE, self.last_ts + max(0, round(budget_ms - before))
                detail = f"{self.used_ms / 60_000:.1f} min out of range, budget {rule.budget_s / 60:g} min"
                limit = rule.high_c if rule.high_c is not None else rule.low_c
                out.append(
                    AlarmTransition(rule.name, rule.kind, rule.severity, self.sensor, ACTIVE, ts, self._started, seq,
                                    None, limit, detail)
                )  # fmt: skip
        for sensor, value in values.items():
            if value is None:
                self.latest.pop(sensor, None)
            else:
                self.latest[sensor] = [ts, value]
        self.last_ts = max(ts, self.last_ts or ts)
        self.outside = any(ts - t <= hold_ms and rule.outside(v) for t, v in self.latest.values())
        return out


class StaleEvaluator(Evaluator):
    """No reading has arrived for ``after_s`` while the crate says it is online (arrival time, not event time)."""

    _STATE = ("online", "reference")
    __slots__ = ("online", "reference", "rule")

    def __init__(self, rule: StaleRule) -> None:
        super().__init__(CRATE_SENSOR)
        self.rule = rule
        self.online = False
        self.reference: int | None = None  # arrival of the last reading, or of the online status

    def _change(self, state: str, ts: int, detail: str = "") -> list[AlarmTransition]:
        rule = self.rule
        self._phase = _ACTIVE if state == ACTIVE else _IDLE
        return [AlarmTransition(rule.name, rule.kind, rule.severity, self.sensor, state, ts, self._started,
                                detail=detail)]  # fmt: skip

    def reading(self, arrival_ms: int) -> list[AlarmTransition]:
        """A reading arrived."""
        self.reference = max(arrival_ms, self.reference or arrival_ms)
        return self._change(CLEARED, arrival_ms) if self.active else []

    def status(self, online: bool, at_ms: int) -> list[AlarmTransition]:
        """The crate's retained status changed (an offline crate is the offline rule's business)."""
        self.online = online
        if online:
            self.reference = max(at_ms, self.reference or at_ms)
            return []
        return self._change(CLEARED, at_ms) if self.active else []

    def excuse(self, now_ms: int) -> None:
        """The gateway itself could not hear the crate until ``now_ms``: that silence is not the crate's."""
        if self.reference is not None:
            self.reference = max(self.reference, now_ms)

    def tick(self, now_ms: int) -> list[AlarmTransition]:
        """Raise once nothing arrived for ``after_s``."""
        if self.active or not self.online or self.reference is None:
            return []
        if now_ms - self.reference < self.rule.after_s * 1000:
            return []
        self._started = self.reference
        return self._change(ACTIVE, now_ms, f"no reading for {(now_ms - self.reference) / 1000:.0f} s while online")


class OfflineEvaluator(Evaluator):
    """The crate has been offline (its last will) for longer than ``after_s``."""

    _STATE = ("offline_since",)
    __slots__ = ("offline_since", "rule")

    def __init__(self, rule: OfflineRule) -> None:
        super().__init__(CRATE_SENSOR)
        self.rule = rule
        self.offline_since: int | None = None

    def status(self, online: bool, at_ms: int) -> list[AlarmTransition]:
        """The crate's status changed; ``at_ms`` is when the gateway learned it (a will's own ts is stale)."""
        if not online:
            if self.offline_since is None:
                self.offline_since = at_ms
            return []
        self.offline_since = None
        if not self.active:
            return []
        self._phase = _IDLE
        rule = self.rule
        return [AlarmTransition(rule.name, rule.kind, rule.severity, self.sensor, CLEARED, at_ms, self._started)]

    def tick(self, now_ms: int) -> list[AlarmTransition]:
        """Raise once offline for ``after_s``."""
        since = self.offline_since
        if self.active or since is None or now_ms - since < self.rule.after_s * 1000:
            return []
        self._phase, self._started = _ACTIVE, since
        rule = self.rule
        detail = f"offline for {(now_ms - since) / 1000:.0f} s"
        return [AlarmTransition(rule.name, rule.kind, rule.severity, self.sensor, ACTIVE, now_ms, since, detail=detail)]


class LidEvaluator(Evaluator):
    """The lid has been open for longer than ``after_s``, in event time (lid events and reading times)."""

    _STATE = ("opened",)
    __slots__ = ("opened", "rule")

    def __init__(self, rule: LidRule) -> None:
        super().__init__(CRATE_SENSOR)
        self.rule = rule
        self.opened: int | None = None

    def _transition(self, state: str, ts: int, detail: str = "") -> AlarmTransition:
        rule = self.rule
        return AlarmTransition(rule.name, rule.kind, rule.severity, self.sensor, state, ts, self._started,
                               detail=detail)  # fmt: skip

    def lid(self, is_open: bool, ts: int) -> list[AlarmTransition]:
        """The lid switch changed at event time ``ts``."""
        if is_open:
            if self.opened is None:
                self.opened = ts
            return self.advance(ts)
        out = self.advance(ts)  # a backlog may hold a long opening whose close is all we see
        self.opened = None
        if self.active:
            self._phase = _IDLE
            out.append(self._transition(CLEARED, ts))
        return out

    def advance(self, ts: int) -> list[AlarmTransition]:
        """Event time has reached ``ts`` (a reading or lid event of this crate)."""
        opened = self.opened
        after_ms = round(self.rule.after_s * 1000)
        if self.active or opened is None or ts - opened < after_ms:
            return []
        self._phase, self._started = _ACTIVE, opened
        # dated from when it became too long, which a late backlog may report well after the fact
        return [self._transition(ACTIVE, opened + after_ms, f"lid open longer than {self.rule.after_s:g} s")]
