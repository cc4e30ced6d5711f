"""Stuck-value detection: a probe whose value has not changed for N samples has probably failed.

A real cryogenic probe always shows some noise in its last digit; a frozen ADC,
a broken board or a firmware hang repeats the same number exactly.
"""

from __future__ import annotations

__all__ = ["StuckDetector"]


class StuckDetector:
    """Feed one sensor's values in order; learn when they have repeated ``samples`` times, and when that ends."""

    __slots__ = ("_count", "_last", "samples", "stuck")

    def __init__(self, samples: int) -> None:
        if samples < 2:
            raise ValueError("a value must repeat at least twice to look stuck")
        self.samples = samples
        self.stuck = False
        self._last: float | None = None
        self._count = 0

    def feed(self, value: float) -> bool | None:
        """Account for one value; True when it just became stuck, False when it just came unstuck, else None."""
        if value == self._last:
            self._count += 1
        else:
            self._last = value
            self._count = 1
        if not self.stuck and self._count >= self.samples:
            self.stuck = True
            return True
        if self.stuck and self._count == 1:
            self.stuck = False
            return False
        return None
