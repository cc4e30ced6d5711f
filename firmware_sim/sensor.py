"""A temperature probe as the board's ADC sees it: noise, resolution and measuring range."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Probe", "ProbeReading"]


@dataclass(frozen=True, slots=True)
class ProbeReading:
    """What the board reports for one probe in one tick (a CCTMP sentence's fields)."""

    sensor: str
    celsius: float
    status: str = "OK"


@dataclass(frozen=True, slots=True)
class Probe:
    """A PT100-style probe: Gaussian noise of ``noise_c`` (1 sigma), quantised to ``resolution_c``.

    Outside ``min_c..max_c`` the board reports ``RANGE`` with the value pinned at the limit.
    """

    name: str
    noise_c: float = 0.05
    resolution_c: float = 0.01
    offset_c: float = 0.0
    min_c: float = -200.0
    max_c: float = 80.0
    location: str = "payload"  # what it measures: "payload" or "ambient" (a probe outside the crate)

    def read(self, true_c: float, rng: random.Random) -> ProbeReading:
        """Sample the probe at true temperature ``true_c``; draws exactly one number from ``rng``."""
        return self.clamp(true_c + self.offset_c + rng.gauss(0.0, self.noise_c))

    def clamp(self, celsius: float) -> ProbeReading:
        """Quantise a measured value; outside the range, ``RANGE`` at the limit."""
        value = round(celsius / self.resolution_c) * self.resolution_c
        if value < self.min_c:
            return ProbeReading(self.name, self.min_c, "RANGE")
        if value > self.max_c:
            return ProbeReading(self.name, self.max_c, "RANGE")
        return ProbeReading(self.name, value)
