"""Excursion arithmetic: turn a probe's readings, in event-time order, into alarm transitions."""

from __future__ import annotations

from coldchain.alarms.transition import ACTIVE, CLEARED, AlarmTransition
from coldchain.profiles import ThresholdRule

__all__ = ["ThresholdTracker"]

_IDLE, _PENDING, _ACTIVE, _CLEARING = range(4)


class ThresholdTracker:
    """State of one threshold rule on one sensor. Feed readings in event-time order."""

    __slots__ = ("_since", "_started", "_state", "rule", "sensor")

    def __init__(self, rule: ThresholdRule, sensor: str) -> None:
        self.rule = rule
        self.sensor = sensor
        self._state = _IDLE
        self._since = 0  # start of the pending breach or of the pending recovery
        self._started = 0  # start of the active excursion

    @property
    def active(self) -> bool:
        """True while the alarm is raised (including while its recovery is being confirmed)."""
        return self._state in (_ACTIVE, _CLEARING)

    def snapshot(self) -> dict[str, int]:
        """JSON-able state, so a restarted gateway resumes a pending or active excursion."""
        return {"state": self._state, "since": self._since, "started": self._started}

    def restore(self, snapshot: dict[str, int]) -> None:
        """Resume from ``snapshot()``."""
        self._state = int(snapshot["state"])
        self._since = int(snapshot["since"])
        self._started = int(snapshot["started"])

    def feed(self, value_c: float, ts: int, seq: int) -> AlarmTransition | None:
        """Account for one reading; return the transition it causes, if any."""
        rule = self.rule
        state = self._state
        if state in (_IDLE, _PENDING):
            if not rule.breached(value_c):
                self._state = _IDLE
                return None
            if state == _IDLE:
                self._since = ts
            if ts - self._since >= rule.delay_s * 1000:
                self._state = _ACTIVE
                self._started = self._since
                word = "above" if rule.kind == "high" else "below"
                detail = f"{value_c:.2f} °C {word} {rule.threshold_c:.1f} °C"
                return self._transition(ACTIVE, value_c, ts, seq, detail)
            self._state = _PENDING
            return None
        if not rule.recovered(value_c):
            self._state = _ACTIVE
            return None
        if state == _ACTIVE:
            self._since = ts
        if ts - self._since >= rule.clear_delay_s * 1000:
            self._state = _IDLE
            return self._transition(CLEARED, value_c, ts, seq)
        self._state = _CLEARING
        return None

    def _transition(self, state: str, value_c: float, ts: int, seq: int, detail: str = "") -> AlarmTransition:
        rule = self.rule
        return AlarmTransition(
            rule.name, rule.kind, rule.severity, self.sensor, state, ts, self._started, seq,
            value_c, rule.threshold_c, detail,
        )  # fmt: skip
