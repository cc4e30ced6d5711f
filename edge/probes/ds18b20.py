"""DS18B20 1-wire sensors through the kernel's sysfs files (``/sys/bus/w1/devices/28-*/w1_slave``).

One method opens the file; decoding is a pure function. ``w1_slave`` holds two lines:
the scratchpad bytes ending ``crc=XX YES`` (or ``NO``), then the same bytes and
``t=<millidegrees>``. Reading the file makes the kernel start a conversion.

Fault mapping on the wire: no device file -> ``OPEN`` (unplugged or the w1 overlay is
off); a CRC failure that persists over retries, or the 85 °C power-on value -> ``RANGE``
(the value cannot be trusted).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

from coldchain.errors import ProbeError
from coldchain.wire import Reading

__all__ = ["DS18B20", "POWER_ON_MILLIDEGREES", "decode_w1_slave"]

log = logging.getLogger(__name__)

POWER_ON_MILLIDEGREES: Final = 85_000
CRC_ATTEMPTS: Final = 3


class PowerOnValueError(ProbeError):
    """The sensor returned its 85 °C power-on reset value: no conversion happened."""


def decode_w1_slave(text: str) -> float:
    """Degrees Celsius from the text of a ``w1_slave`` file; ProbeError says what is wrong."""
    lines = text.strip().splitlines()
    if len(lines) < 2 or "t=" not in lines[1]:
        raise ProbeError(f"w1_slave is truncated or not a DS18B20's: {text[:80]!r}")
    if not lines[0].rstrip().endswith("YES"):
        raise ProbeError(f"CRC check failed ({lines[0].strip()!r}): noise on the 1-wire bus, check the pull-up")
    raw = lines[1].rsplit("t=", 1)[1].strip()
    try:
        millidegrees = int(raw)
    except ValueError:
        raise ProbeError(f"w1_slave temperature {raw!r} is not an integer") from None
    if millidegrees == POWER_ON_MILLIDEGREES:
        raise PowerOnValueError(
            "85 °C is the DS18B20's power-on reset value: it did not convert (check its supply or parasitic power)"
        )
    return millidegrees / 1000.0


class DS18B20:
    """Reads the configured DS18B20s, one fault reading for each that cannot be read."""

    def __init__(self, sensors: dict[str, str], devices_dir: Path) -> None:
        self.sensors = sensors  # sensor name -> 1-wire id (28-...)
        self.devices_dir = devices_dir
        self._warned: set[str] = set()

    def _read_file(self, device: str) -> str:
        return (self.devices_dir / device / "w1_slave").read_text()

    def read(self) -> list[Reading]:
        """One reading per configured sensor."""
        return [self._read_one(sensor, device) for sensor, device in self.sensors.items()]

    def _read_one(self, sensor: str, device: str) -> Reading:
        problem = ""
        for _ in range(CRC_ATTEMPTS):
            try:
                value = decode_w1_slave(self._read_file(device))
            except FileNotFoundError:
                self._warn(sensor, f"{self.devices_dir / device} is missing (unplugged? dtoverlay=w1-gpio set?)")
                return Reading(sensor, None, "OPEN")
            except PowerOnValueError as exc:
                self._warn(sensor, str(exc))
                return Reading(sensor, None, "RANGE")
            except (ProbeError, OSError) as exc:
                problem = str(exc)
                continue
            self._warned.discard(sensor)
            return Reading(sensor, round(value, 3))
        self._warn(sensor, f"{problem} ({CRC_ATTEMPTS} attempts)")
        return Reading(sensor, None, "RANGE")

    def _warn(self, sensor: str, problem: str) -> None:
        # one line when a sensor goes bad, not one per sample
        if sensor not in self._warned:
            self._warned.add(sensor)
            log.error("DS18B20 %s (%s): %s", sensor, self.sensors[sensor], problem)
