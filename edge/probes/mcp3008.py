"""A PT1000 or NTC thermistor on an MCP3008 ADC channel, read through gpiozero.

The sensor sits between the ADC input and ground and is fed from the ADC's
reference through a series resistor; ``coldchain.thermistors`` does the
arithmetic. A reading at the bottom rail is a ``SHORT``, at the top rail an
``OPEN``; a value outside the sensor's curve is ``RANGE``.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from gpiozero import MCP3008

from coldchain.thermistors import divider_resistance
from coldchain.wire import PLAUSIBLE_MAX_C, PLAUSIBLE_MIN_C, Reading

__all__ = ["AdcThermometer", "Curve"]

log = logging.getLogger(__name__)


class Curve(Protocol):
    """A resistance-to-temperature conversion (Callendar–Van Dusen, Steinhart–Hart)."""

    def temperature(self, ohms: float) -> float: ...


class AdcThermometer:
    """The sensors on one MCP3008 (one channel each)."""

    def __init__(
        self,
        channels: dict[str, int],
        curve: Curve,
        series_ohms: float,
        spi_device: int = 0,
        pin_factory: Any = None,
    ) -> None:
        self.curve = curve
        self.series_ohms = series_ohms
        self.adcs = {
            sensor: MCP3008(channel=channel, device=spi_device, pin_factory=pin_factory)
            for sensor, channel in channels.items()
        }
        self._faulty: set[str] = set()

    def read(self) -> list[Reading]:
        """One reading per configured sensor."""
        return [self._read_one(sensor, adc) for sensor, adc in self.adcs.items()]

    def _read_one(self, sensor: str, adc: MCP3008) -> Reading:
        raw = int(adc.raw_value)
        top = 2**adc.bits - 1
        if raw <= 0:
            return self._fault(sensor, "SHORT", "ADC at 0: the sensor or its wiring is shorted")
        if raw >= top:
            return self._fault(sensor, "OPEN", f"ADC at {top}: the sensor is disconnected")
        celsius = self.curve.temperature(divider_resistance(raw / (top + 1), self.series_ohms))
        if not PLAUSIBLE_MIN_C <= celsius <= PLAUSIBLE_MAX_C:
            return self._fault(sensor, "RANGE", f"{celsius:.1f} °C is outside what the probe can mean")
        self._faulty.discard(sensor)
        return Reading(sensor, round(celsius, 2))

    def _fault(self, sensor: str, fault: str, problem: str) -> Reading:
        if sensor not in self._faulty:
            self._faulty.add(sensor)
            log.error("ADC sensor %s: %s", sensor, problem)
        return Reading(sensor, None, fault)

    def close(self) -> None:
        """Release the SPI pins."""
        for adc in self.adcs.values():
            adc.close()
