"""The ADXL345 driver against a simulated register device behind smbus2's calls, and smbus2's real open."""

from __future__ import annotations

import math
import re
import threading
from pathlib import Path

import pytest
import smbus2
from edge_helpers import wait_until

from coldchain.errors import ConfigError
from coldchain.settings.table import Table
from edge.__main__ import build_probes
from edge.clock import Clock
from edge.config import load_config
from edge.events import Event, Notice
from edge.probes.accel import ADXL345_DEVID, AccelConfig, Adxl345, parse_accel

CLOCK = Clock(wall_ms=lambda: 1_795_000_000_000, mono_ms=lambda: 1_000)


class SimulatedAdxl345:
    """An ADXL345's registers as the datasheet lays them out, answering the smbus2.SMBus calls the driver makes.

    No I2C device can exist here (no /dev/i2c-*, and no kernel modules to load i2c-stub from), so the device is
    simulated one level up: register reads and writes, little-endian two's-complement axis data,
    which the part only updates while POWER_CTL's measure bit is set.
    """

    def __init__(self, address: int = 0x53, devid: int = ADXL345_DEVID) -> None:
        self.address = address
        self.registers = dict.fromkeys(range(0x40), 0)
        self.registers[0x00] = devid
        self.closed = False
        self.set_g(0.0, 0.0, 1.0)

    def set_g(self, x: float, y: float, z: float) -> None:
        """What the sensor measures now, in g (full resolution: 256 LSB per g)."""
        for register, value in zip((0x32, 0x34, 0x36), (x, y, z), strict=True):
            raw = round(value * 256) & 0xFFFF
            self.registers[register], self.registers[register + 1] = raw & 0xFF, raw >> 8

    def _check(self, i2c_addr: int) -> None:
        if i2c_addr != self.address:
            raise OSError(121, "Remote I/O error")  # what the kernel says when nobody ACKs the address

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        self._check(i2c_addr)
        return self.registers[register]

    def write_byte_data(self, i2c_addr: int, register: int, value: int, force: bool | None = None) -> None:
        self._check(i2c_addr)
        self.registers[register] = value

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int, force: bool | None = None) -> list[int]:
        self._check(i2c_addr)
        if not self.registers[0x2D] & 0x08:
            return [0] * length  # in standby the data registers hold nothing
        return [self.registers[register + i] for i in range(length)]

    def close(self) -> None:
        self.closed = True


def _run(driver: Adxl345) -> tuple[list[Event], threading.Event, threading.Thread]:
    events: list[Event] = []
    stop = threading.Event()
    thread = threading.Thread(target=driver.run, args=(events.append, stop), daemon=True)
    thread.start()
    return events, stop, thread


def test_upright_then_tipped_then_dropped_gives_orientation_and_shock_events() -> None:
    """Upright 0°, laid on its side 90°, a 3.5 g jolt: two orientation events and one shock, with the quiet angle."""
    device = SimulatedAdxl345()
    driver = Adxl345(AccelConfig(period_s=0.01), CLOCK, open_bus=lambda bus: device)
    events, stop, thread = _run(driver)
    try:
        wait_until(lambda: events, 5, "first orientation")
        device.set_g(math.sin(math.radians(60)), 0.0, math.cos(math.radians(60)))  # leaning at 60°
        wait_until(lambda: len(events) >= 2, 5, "tilt")
        device.set_g(1.0, 0.0, 3.5)  # the jolt: 3.64 g, pointing nowhere in particular
        wait_until(lambda: len(events) >= 3, 5, "shock")
        device.set_g(1.0, 0.0, 0.0)  # then it lies still
    finally:
        stop.set()
        thread.join(5)
    got = [(n.event, n.detail) for n in events if isinstance(n, Notice)]
    assert got[:3] == [
        ("orientation", {"probe": "i2c-1@0x53", "tilt_deg": 0.0}),
        ("orientation", {"probe": "i2c-1@0x53", "tilt_deg": 60.0}),
        ("shock", {"probe": "i2c-1@0x53", "shock_g": 2.64, "tilt_deg": 60.0}),
    ]
    assert device.registers[0x2D] == 0x08
    assert device.registers[0x31] == 0x0B
    assert device.closed


def test_a_device_that_is_not_an_adxl345_is_never_read() -> None:
    """Another part at the address (device id 0x00): logged and retried, no event, never put into measure mode."""
    device = SimulatedAdxl345(devid=0x00)
    driver = Adxl345(AccelConfig(period_s=0.01), CLOCK, open_bus=lambda bus: device)
    events, stop, thread = _run(driver)
    wait_until(lambda: device.closed, 5, "bus closed after the check")
    stop.set()
    thread.join(5)
    assert events == []
    assert device.registers[0x2D] == 0


def test_real_smbus2_on_a_missing_bus_is_retried_not_fatal(tmp_path: Path) -> None:
    """smbus2.SMBus itself, on an i2c device that does not exist: the driver logs it and tries again."""
    opened: list[str] = []

    def open_missing(bus: int) -> object:
        opened.append(str(tmp_path / f"i2c-{bus}"))
        return smbus2.SMBus(opened[-1])

    driver = Adxl345(AccelConfig(bus=7), CLOCK, open_bus=open_missing)  # type: ignore[arg-type]
    events, stop, thread = _run(driver)
    wait_until(lambda: len(opened) >= 2, 5, "second attempt")
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert events == []
    assert not driver.ready


@pytest.mark.parametrize("address", ["0x68", "0"])
def test_config_refuses_an_address_no_adxl345_answers_on(address: str) -> None:
    """[accelerometer] address other than 0x53 or 0x1D: a config error naming the key."""
    with pytest.raises(ConfigError, match=re.escape("accelerometer.address")):
        parse_accel(Table({"address": int(address, 0)}, "agent.toml", "accelerometer"))


def test_agent_config_fits_the_sensors_beside_the_probes(tmp_path: Path) -> None:
    """[gps] and an empty [accelerometer] give a GpsReceiver and an ADXL345 on i2c-1 at 0x53 beside the board."""
    path = tmp_path / "agent.toml"
    path.write_text(
        '[crate]\nid = "C-1"\nprofile = "cryo"\n[[probes]]\ndriver = "serial"\nport = "loop://"\n'
        'sensors = ["probe1"]\n[gps]\nport = "loop://"\n[accelerometer]\n'
    )
    probes = build_probes(load_config(path), CLOCK)
    assert [type(p).__name__ for p in probes] == ["SerialBoard", "GpsReceiver", "Adxl345"]
    assert probes[2].config == AccelConfig(bus=1, address=0x53, period_s=0.1)  # type: ignore[attr-defined]
