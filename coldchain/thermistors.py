"""Resistance thermometers: from an ADC reading to degrees Celsius.

Pure arithmetic for the agent's analog probes: a platinum RTD (PT1000, PT100)
through the Callendar–Van Dusen equation (IEC 60751), an NTC thermistor through
the Steinhart–Hart equation, and the voltage divider that turns either into an
ADC ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

__all__ = [
    "IEC_60751",
    "CallendarVanDusen",
    "SteinhartHart",
    "divider_resistance",
]

KELVIN: Final = 273.15


@dataclass(frozen=True, slots=True)
class CallendarVanDusen:
    """R(T) = R0·(1 + A·T + B·T² + C·(T − 100)·T³), the C term only below 0 °C."""

    r0: float
    a: float
    b: float
    c: float

    def resistance(self, celsius: float) -> float:
        """Resistance in ohms at ``celsius``."""
        t = celsius
        r = 1.0 + self.a * t + self.b * t * t
        if t < 0:
            r += self.c * (t - 100.0) * t**3
        return self.r0 * r

    def temperature(self, ohms: float) -> float:
        """Temperature in °C for a resistance in ohms (valid −200 to 850 °C)."""
        if ohms <= 0:
            raise ValueError(f"resistance must be positive, got {ohms} Ω")
        ratio = ohms / self.r0
        # above 0 °C the quadratic has a closed-form root; it is also a good start below 0 °C
        t = (-self.a + math.sqrt(self.a * self.a - 4.0 * self.b * (1.0 - ratio))) / (2.0 * self.b)
        if ratio >= 1.0:
            return t
        for _ in range(20):  # Newton on the quartic; converges in 3-4 steps over the whole range
            f = self.resistance(t) / self.r0 - ratio
            slope = self.a + 2.0 * self.b * t + self.c * (4.0 * t**3 - 300.0 * t * t)
            step = f / slope
            t -= step
            if abs(step) < 1e-9:
                break
        return t


def IEC_60751(r0: float = 1000.0) -> CallendarVanDusen:  # noqa: N802 (the standard's name)
    """The standard platinum curve (α = 0.00385) for an R0 of ``r0`` ohms (PT1000 by default)."""
    return CallendarVanDusen(r0, 3.9083e-3, -5.775e-7, -4.183e-12)


@dataclass(frozen=True, slots=True)
class SteinhartHart:
    """1/T = a + b·ln R + c·(ln R)³, T in kelvin: an NTC thermistor's curve from its datasheet."""

    a: float
    b: float
    c: float

    def temperature(self, ohms: float) -> float:
        """Temperature in °C for a resistance in ohms."""
        if ohms <= 0:
            raise ValueError(f"resistance must be positive, got {ohms} Ω")
        ln_r = math.log(ohms)
        return 1.0 / (self.a + self.b * ln_r + self.c * ln_r**3) - KELVIN

    def resistance(self, celsius: float) -> float:
        """Resistance in ohms at ``celsius`` (the cubic solved in closed form)."""
        inverse_t = 1.0 / (celsius + KELVIN)
        x = (self.a - inverse_t) / self.c
        y = math.sqrt((self.b / (3.0 * self.c)) ** 3 + x * x / 4.0)
        return math.exp(math.cbrt(y - x / 2.0) - math.cbrt(y + x / 2.0))


def divider_resistance(ratio: float, series_ohms: float) -> float:
    """The sensor's resistance when it sits between the ADC input and ground, fed through ``series_ohms``.

    ``ratio`` is the ADC reading as a fraction of its reference (0..1, exclusive):
    V_adc / V_ref = R / (R + R_series).
    """
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ADC ratio {ratio} is at a rail: the sensor is shorted (0) or open (1)")
    return series_ohms * ratio / (1.0 - ratio)
