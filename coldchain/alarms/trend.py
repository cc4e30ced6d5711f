"""Trend rules: rate of rise and predicted time to an excursion, from a least-squares fit over a window.

A dry shipper running out of nitrogen warms slowly at first (well under 1 °C/h
for hours) and then ever faster; a fit over an hour or two sees the trend long
before the critical limit, while probe noise on a steady shipper fits to a
slope near zero.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from coldchain.alarms.evaluators import MS_PER_H, Evaluator
from coldchain.alarms.rules import PredictionRule, RateRule
from coldchain.alarms.transition import ACTIVE, CLEARED, AlarmTransition

# a fit over this many points is as good as over every reading, and keeps the per-reading
# cost at 10,000 readings/s to a comparison for most readings
POINTS_PER_WINDOW: Final = 120

__all__ = ["PredictionEvaluator", "RateEvaluator", "linear_fit"]


def linear_fit(points: list[tuple[int, float]]) -> tuple[float, float] | None:
    """Least-squares line through (epoch ms, °C): (slope in °C/h, fitted value at the last point), or None."""
    window = _Window(0)
    for ts, value in points:
        window.add(ts, value)
    return window.fit()


class _Window:
    """Readings of the last ``span_ms``, at most one per ``span_ms / POINTS_PER_WINDOW``, with running sums."""

    __slots__ = ("_anchor", "_evicted", "_n", "_sx", "_sxx", "_sxy", "_sy", "points", "span_ms", "step_ms")

    def __init__(self, span_ms: float) -> None:
        self.span_ms = span_ms
        self.step_ms = span_ms / POINTS_PER_WINDOW
        self.points: deque[tuple[int, float]] = deque()
        self._rebase(0)

    def _rebase(self, anchor: int) -> None:
        # sums relative to a recent anchor keep the float arithmetic exact enough over a 14-day shipment
        self._anchor, self._evicted = anchor, 0
        self._n = self._sx = self._sy = self._sxx = self._sxy = 0.0
        for ts, value in self.points:
            self._sum(ts, value, 1.0)

    def _sum(self, ts: int, value: float, sign: float) -> None:
        x = (ts - self._anchor) / MS_PER_H
        self._n += sign
        self._sx += sign * x
        self._sy += sign * value
        self._sxx += sign * x * x
        self._sxy += sign * x * value

    def add(self, ts: int, value: float) -> bool:
        """Take a reading (unless one was taken less than a step ago) and drop those older than the span."""
        if not self.points:
            self._rebase(ts)
        elif ts - self.points[-1][0] < self.step_ms:
            return False
        self.points.append((ts, value))
        self._sum(ts, value, 1.0)
        while self.span_ms and self.points[0][0] < ts - self.span_ms:
            self._sum(*self.points.popleft(), -1.0)
            self._evicted += 1
        if self._evicted > len(self.points):
            self._rebase(self.points[0][0])
        return True

    @property
    def covered_ms(self) -> int:
        """Time between the oldest and newest reading held."""
        return self.points[-1][0] - self.points[0][0] if self.points else 0

    def fit(self) -> tuple[float, float] | None:
        """(slope °C/h, fitted value at the newest reading), None with fewer than two distinct times."""
        n = self._n
        denominator = n * self._sxx - self._sx * self._sx
        if n < 2 or denominator <= 1e-12:
            return None
        slope = (n * self._sxy - self._sx * self._sy) / denominator
        last_x = (self.points[-1][0] - self._anchor) / MS_PER_H
        return slope, self._sy / n + slope * (last_x - self._sx / n)

    def judge(self, ts: int, value: float, min_samples: int) -> tuple[float, float] | None:
        """Take a reading and fit the window, None while too little data to judge (keep the current state):
        the reading came within a step, fewer than ``min_samples`` readings, or less than half the span covered."""
        if not self.add(ts, value):
            return None
        fit = self.fit()
        if fit is None or len(self.points) < min_samples or self.covered_ms < self.span_ms / 2:
            return None
        return fit

    def snapshot(self) -> list[list[float]]:
        return [[ts, value] for ts, value in self.points]

    def restore(self, points: list[list[float]]) -> None:
        self.points = deque((int(ts), float(value)) for ts, value in points)
        self._rebase(self.points[0][0] if self.points else 0)


class RateEvaluator(Evaluator):
    """Rate of rise: the least-squares slope over the window exceeds the limit."""

    _STATE = ("window",)
    __slots__ = ("rule", "window")

    def __init__(self, rule: RateRule, sensor: str) -> None:
        super().__init__(sensor)
        self.rule = rule
        self.window = _Window(rule.window_s * 1000)

    def reading(self, ts: int, seq: int, value_c: float) -> list[AlarmTransition]:
        """Account for one good reading."""
        rule = self.rule
        fit = self.window.judge(ts, value_c, rule.min_samples)
        if fit is None:
            return []
        slope = fit[0]
        condition = slope > rule.max_rate_c_per_h - (rule.hysteresis_c_per_h if self.active else 0.0)
        change = self._debounce(condition, ts, rule.delay_s * 1000, 0)
        if change is None:
            return []
        detail = f"warming {slope:.2f} °C/h (limit {rule.max_rate_c_per_h:g} °C/h)" if change == ACTIVE else ""
        return [
            AlarmTransition(
                rule.name, rule.kind, rule.severity, self.sensor, change, ts, self._started, seq, value_c, None, detail
            )
        ]


class PredictionEvaluator(Evaluator):
    """Predicted excursion: a line fitted over the window reaches the target within the horizon.

    While ``tipped_deg`` is set (the crate stands beyond its profile's tilt limit) the
    fitted warming counts ``rule.tipped_factor`` times faster.
    """

    _STATE = ("window", "tipped_deg")
    __slots__ = ("rule", "tipped_deg", "window")

    def __init__(self, rule: PredictionRule, sensor: str) -> None:
        super().__init__(sensor)
        self.rule = rule
        self.window = _Window(rule.window_s * 1000)
        self.tipped_deg: float | None = None  # the crate's tilt while beyond the limit, set by its monitor

    def reading(self, ts: int, seq: int, value_c: float) -> list[AlarmTransition]:
        """Account for one good reading."""
        rule = self.rule
        fit = self.window.judge(ts, value_c, rule.min_samples)
        if fit is None:
            return []
        fitted_slope, fitted = fit
        tipped = self.tipped_deg is not None and rule.tipped_factor != 1.0
        slope = fitted_slope * rule.tipped_factor if tipped else fitted_slope
        eta_s = max(0.0, (rule.target_c - fitted) / slope * 3600) if slope > 0 else float("inf")
        if self.active:
            condition = slope >= rule.min_rate_c_per_h and eta_s <= rule.horizon_s + rule.clear_margin_s
        else:
            condition = slope >= rule.min_rate_c_per_h and eta_s <= rule.horizon_s
        change = self._debounce(condition, ts, rule.delay_s * 1000, 0)
        if change is None:
            return []
        if change == CLEARED:
            return [self._transition(change, ts, seq, value_c)]
        detail = f"predicted to reach {rule.target_c:.1f} °C in ~{eta_s / 3600:.1f} h (warming {slope:.2f} °C/h)"
        if tipped:
            detail = (
                f"predicted to reach {rule.target_c:.1f} °C in ~{eta_s / 3600:.1f} h: tipped {self.tipped_deg:.0f}°, "
                f"so boiling off {rule.tipped_factor:g}x faster "
                f"(warming {fitted_slope:.2f} °C/h counted as {slope:.2f})"
            )
        return [self._transition(change, ts, seq, value_c, detail=detail, predicted_ts=ts + round(eta_s * 1000))]

    def _transition(
        self, state: str, ts: int, seq: int, value_c: float, *, detail: str = "", predicted_ts: int | None = None
    ) -> AlarmTransition:
        rule = self.rule
        return AlarmTransition(
            rule.name, rule.kind, rule.severity, self.sensor, state, ts, self._started, seq, value_c,
            rule.target_c, detail, predicted_ts,
        )  # fmt: skip
