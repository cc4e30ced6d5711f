"""An ADXL345 accelerometer on the Pi's I2C bus (smbus2): the crate's tilt from vertical and its shocks.

Mount it with its z axis along the shipper's axis (up when upright). The driver reads the
three axes every ``period_s``; the tilt is taken from quiet samples only (within
``QUIET_G`` of 1 g: gravity alone), since a jolt's acceleration points anywhere, and every
sample's departure from 1 g is a shock candidate. ``OrientationWatch`` decides what is
worth an event. A shock shorter than the sample period can fall between two reads: the
part's own shock detection (THRESH_SHOCK and an interrupt pin) would catch those.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import smbus2

from coldchain.position.geometry import shock_g, tilt_deg
from coldchain.settings.table import Table
from edge.clock import Clock
from edge.events import Event
from edge.probes.orientation import OrientationWatch

__all__ = ["ADXL345_DEVID", "AccelConfig", "Adxl345", "I2cBus", "parse_accel"]

log = logging.getLogger(__name__)

ADXL345_DEVID: Final = 0xE5
REG_DEVID: Final = 0x00
REG_BW_RATE: Final = 0x2C
REG_POWER_CTL: Final = 0x2D
REG_DATA_FORMAT: Final = 0x31
REG_DATAX0: Final = 0x32
MEASURE: Final = 0x08  # POWER_CTL: leave standby
FULL_RES_16G: Final = 0x0B  # DATA_FORMAT: full resolution (4 mg/LSB at every range), ±16 g
RATE_100HZ: Final = 0x0A
LSB_PER_G: Final = 256.0  # full resolution: 3.9 mg/LSB typical
QUIET_G: Final = 0.15
REOPEN_MAX_S = 30.0


class I2cBus(Protocol):
    """The part of ``smbus2.SMBus`` the driver uses: a test gives a simulated device with the same calls."""

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int: ...

    def write_byte_data(self, i2c_addr: int, register: int, value: int, force: bool | None = None) -> None: ...

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class AccelConfig:
    """``[accelerometer]``: where the ADXL345 is and how often it is read."""

    bus: int = 1  # /dev/i2c-1: the Pi's header pins 3 and 5
    address: int = 0x53  # SDO low; 0x1D with SDO high
    period_s: float = 0.1


def parse_accel(table: Table) -> AccelConfig:
    """The ``[accelerometer]`` table (present, maybe empty: every key has a default)."""
    address = table.integer("address", 0x53)
    if address not in (0x53, 0x1D):
        raise table.error("address", f"{address:#x} is not an ADXL345 address (0x53 or 0x1d)")
    return AccelConfig(
        bus=table.integer("bus", 1, minimum=0, maximum=255),
        address=address,
        period_s=table.number("period_s", 0.1, minimum=0.01, maximum=60.0),
    )


def _signed(low: int, high: int) -> int:
    value = low | (high << 8)
    return value - 0x10000 if value & 0x8000 else value


class Adxl345:
    """Reads the accelerometer until stopped; a missing or wrong device is logged and retried."""

    def __init__(self, config: AccelConfig, clock: Clock, open_bus: Callable[[int], I2cBus] = smbus2.SMBus) -> None:
        self.config = config
        self.clock = clock
        self.open_bus = open_bus  # the test seam: smbus2.SMBus on a Pi, a simulated register device in tests
        self.name = f"i2c-{config.bus}@{config.address:#04x}"
        self.ready = False
        self.watch = OrientationWatch(self.name)
        self._tilt: float | None = None

    def run(self, emit: Callable[[Event], None], stop: threading.Event) -> None:
        """Read until ``stop`` is set, reopening the bus after an I/O error."""
        delay = 1.0
        while not stop.is_set():
            try:
                bus = self.open_bus(self.config.bus)
            except OSError as exc:
                log.warning("accelerometer %s: cannot open the bus (%s); retrying in %.0f s", self.name, exc, delay)
            else:
                try:
                    if self._start(bus):
                        delay = 1.0
                        self._session(bus, emit, stop)
                except OSError as exc:
                    log.error("accelerometer %s: I/O error (%s); will reopen", self.name, exc)
                finally:
                    self.ready = False
                    bus.close()
            stop.wait(delay)
            delay = min(delay * 2, REOPEN_MAX_S)

    def _start(self, bus: I2cBus) -> bool:
        devid = bus.read_byte_data(self.config.address, REG_DEVID)
        if devid != ADXL345_DEVID:
            log.error("accelerometer %s: device id %#04x is not an ADXL345's (0xe5)", self.name, devid)
            return False
        bus.write_byte_data(self.config.address, REG_DATA_FORMAT, FULL_RES_16G)
        bus.write_byte_data(self.config.address, REG_BW_RATE, RATE_100HZ)
        bus.write_byte_data(self.config.address, REG_POWER_CTL, MEASURE)
        self.watch.restart()
        self.ready = True
        log.info("accelerometer %s: measuring", self.name)
        return True

    def _session(self, bus: I2cBus, emit: Callable[[Event], None], stop: threading.Event) -> None:
        while not stop.is_set():
            self.sample(bus.read_i2c_block_data(self.config.address, REG_DATAX0, 6), emit)
            stop.wait(self.config.period_s)

    def sample(self, data: Sequence[int], emit: Callable[[Event], None]) -> None:
        """One read of DATAX0..DATAZ1: update the tilt when quiet, and hand on what is worth an event."""
        x, y, z = (_signed(data[i], data[i + 1]) / LSB_PER_G for i in (0, 2, 4))
        shock = round(shock_g(x, y, z), 2)
        if shock <= QUIET_G:
            self._tilt = round(tilt_deg(x, y, z), 1)
        if self._tilt is None:
            return  # no quiet sample yet: the angle is not known, and a jolt is reported with one
        for notice in self.watch.feed(self._tilt, shock, self.clock.wall_ms(), self.clock.mono_ms()):
            emit(notice)
