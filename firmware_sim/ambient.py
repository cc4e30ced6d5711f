"""Ambient temperature around the crate over a shipment: a repeating piecewise-linear profile.

The summer and winter presets follow the spirit of ISTA 7D/7E lanes (not their
exact tables): a daily cycle between night and day temperatures, hot for a summer
lane and crossing freezing for a winter one.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PRESETS", "Ambient"]

HOUR = 3600.0

# (hour of the cycle, °C); a 24 h cycle that repeats
PRESETS: dict[str, tuple[tuple[float, float], ...]] = {
    # warehouse nights, hot tarmac and truck days
    "summer": ((0, 25.0), (8, 25.0), (11, 35.0), (18, 35.0), (22, 25.0), (24, 25.0)),
    # cold loading docks at night, heated cabins by day
    "winter": ((0, -10.0), (7, -10.0), (10, 18.0), (17, 18.0), (21, -10.0), (24, -10.0)),
    "constant": ((0, 22.0), (24, 22.0)),
}


@dataclass(frozen=True, slots=True)
class Ambient:
    """Temperature outside the crate: ``points`` (hour, °C) interpolated, repeated every ``period_h``.

    ``period_h`` of 0 means no repetition: the last point's value holds afterwards.
    """

    points: Sequence[tuple[float, float]]
    period_h: float = 24.0
    offset_c: float = 0.0

    def __post_init__(self) -> None:
        hours = [h for h, _ in self.points]
        if not hours or hours[0] != 0 or hours != sorted(hours):
            raise ValueError("ambient points need ascending hours starting at 0")
        if self.period_h and hours[-1] > self.period_h:
            raise ValueError(f"ambient points go past the {self.period_h} h period")

    @classmethod
    def constant(cls, celsius: float) -> Ambient:
        """A steady ambient."""
        return cls(((0.0, celsius),), 0.0)

    def at(self, t_s: float) -> float:
        """Ambient °C at simulated second ``t_s``."""
        hour = t_s / HOUR
        if self.period_h:
            hour %= self.period_h
        hours = [h for h, _ in self.points]
        i = bisect.bisect_right(hours, hour)
        if i >= len(self.points):
            return self.points[-1][1] + self.offset_c
        (h0, c0), (h1, c1) = self.points[i - 1], self.points[i]
        return c0 + (c1 - c0) * (hour - h0) / (h1 - h0) + self.offset_c
