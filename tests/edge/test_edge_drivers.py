"""Probe drivers through the libraries' real code paths: a sysfs-shaped tree, gpiozero's MockFactory."""

from __future__ import annotations

from pathlib import Path

import pytest
from edge_helpers import PROFILES, Listen, MockMCP3008, RunAgent, agent_config, wait_until
from gpiozero.pins.mock import MockFactory

from cli.services import Mosquitto
from coldchain.errors import ConfigError, ProbeError
from coldchain.thermistors import IEC_60751, SteinhartHart
from coldchain.wire import Reading
from edge.config import load_config
from edge.probes.ds18b20 import DS18B20, decode_w1_slave
from edge.probes.mcp3008 import AdcThermometer

GOOD = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=-23125\n"
BAD_CRC = "72 01 4b 46 7f ff 0e 10 57 : crc=58 NO\n72 01 4b 46 7f ff 0e 10 57 t=-23125\n"
POWER_ON = "50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n"
NTC_10K = SteinhartHart(1.009249522e-03, 2.378405444e-04, 2.019202697e-07)


def _w1(tmp_path: Path, files: dict[str, str]) -> Path:
    """A directory shaped like /sys/bus/w1/devices with one w1_slave per device id."""
    devices = tmp_path / "devices"
    for device, text in files.items():
        (devices / device).mkdir(parents=True)
        (devices / device / "w1_slave").write_text(text)
    devices.mkdir(exist_ok=True)
    return devices


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD, -23.125),
        (GOOD.replace("t=-23125", "t=4500"), 4.5),
        (GOOD.replace("t=-23125", "t=-55000"), -55.0),
    ],
)
def test_w1_slave_decodes(text: str, expected: float) -> None:
    """A w1_slave file with CRC YES gives millidegrees / 1000."""
    assert decode_w1_slave(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [(BAD_CRC, "CRC check failed"), (POWER_ON, "power-on reset value"), ("", "truncated")],
)
def test_w1_slave_refuses_untrustworthy_values(text: str, message: str) -> None:
    """CRC NO, the 85 °C power-on value and a truncated file are errors that say what to check."""
    with pytest.raises(ProbeError, match=message):
        decode_w1_slave(text)


def test_ds18b20_reads_and_maps_faults(tmp_path: Path) -> None:
    """Good sensor -> value; CRC failing every time -> RANGE; 85 °C -> RANGE; missing device -> OPEN."""
    devices = _w1(tmp_path, {"28-000000000001": GOOD, "28-000000000002": BAD_CRC, "28-000000000003": POWER_ON})
    driver = DS18B20(
        {"a": "28-000000000001", "b": "28-000000000002", "c": "28-000000000003", "d": "28-000000000004"}, devices
    )
    assert driver.read() == [
        Reading("a", -23.125),
        Reading("b", None, "RANGE"),
        Reading("c", None, "RANGE"),
        Reading("d", None, "OPEN"),
    ]


def test_ds18b20_for_cryo_profile_is_a_config_error(tmp_path: Path) -> None:
    """A DS18B20 cannot read below -55 °C, so a cryo crate configured with one is refused at start."""
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""[crate]
id = "C-1"
profile = "cryo"
[profiles]
file = "{PROFILES}"
[[probes]]
driver = "ds18b20"
sensors = ["inner"]
devices = ["28-000000000001"]
"""
    )
    with pytest.raises(ConfigError, match=r"probes\[0\]\.driver: a DS18B20 reads only down to -55 °C"):
        load_config(path)


def test_ds18b20_readings_are_published(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, listen: Listen, run_agent: RunAgent
) -> None:
    """The agent samples DS18B20s on its own period and publishes each sample."""
    crate = f"{crate_prefix}-W1"
    devices = _w1(tmp_path, {"28-000000000001": GOOD.replace("t=-23125", "t=4250")})
    probes = f"""[[probes]]
driver = "ds18b20"
sensors = ["inner"]
devices = ["28-000000000001"]
devices_dir = "{devices}"
"""
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/telemetry"])
    config = agent_config(
        tmp_path, crate, mosquitto, probes=probes, profile="refrigerated", extra="[agent]\nsample_period_s = 0.05"
    )
    run_agent(config, with_probes=True)
    got = wait_until(lambda: len(listener.telemetry()) >= 2 and listener.telemetry(), 10, "2 samples")
    assert got[0]["readings"] == [{"sensor": "inner", "value_c": 4.25}]
    assert got[1]["seq"] == got[0]["seq"] + 1


@pytest.mark.parametrize("celsius", [-196.0, -150.0, -80.0, 0.0, 25.0, 60.0])
def test_pt1000_round_trip(celsius: float) -> None:
    """Callendar–Van Dusen resistance and its inverse agree across the cryogenic range."""
    curve = IEC_60751()
    assert curve.temperature(curve.resistance(celsius)) == pytest.approx(celsius, abs=1e-6)


@pytest.mark.parametrize(("celsius", "ohms"), [(-200.0, 185.20), (-100.0, 602.56), (0.0, 1000.0), (100.0, 1385.06)])
def test_pt1000_matches_iec_60751_table(celsius: float, ohms: float) -> None:
    """PT1000 resistances match the IEC 60751 table."""
    assert IEC_60751().resistance(celsius) == pytest.approx(ohms, abs=0.01)


@pytest.mark.parametrize(("celsius", "ohms"), [(25.0, 10_000.0), (0.0, 28_000.0), (-40.0, 205_000.0)])
def test_steinhart_hart_10k_ntc(celsius: float, ohms: float) -> None:
    """A 10 kΩ NTC's datasheet coefficients give its nominal points (within a percent) and invert exactly."""
    assert NTC_10K.resistance(celsius) == pytest.approx(ohms, rel=0.015)
    assert NTC_10K.temperature(NTC_10K.resistance(celsius)) == pytest.approx(celsius, abs=1e-6)


def test_mcp3008_pt1000_reads_temperature_and_rail_faults(factory: MockFactory) -> None:
    """A PT1000 on an MCP3008 through gpiozero gives °C; 0 is SHORT and full scale is OPEN."""
    adc = MockMCP3008(factory)
    series = 1000.0
    ohms = IEC_60751().resistance(-150.0)
    adc.ratios[0] = ohms / (ohms + series)
    driver = AdcThermometer({"pt": 0, "b": 1, "c": 2}, IEC_60751(), series)
    adc.ratios[1] = 0.0
    adc.ratios[2] = 1.0
    try:
        pt, short, open_ = driver.read()
        assert pt.value_c == pytest.approx(-150.0, abs=0.5)  # one ADC step is ~0.5 °C here
        assert short == Reading("b", None, "SHORT")
        assert open_ == Reading("c", None, "OPEN")
    finally:
        driver.close()


def test_mcp3008_ntc_via_steinhart_hart(factory: MockFactory) -> None:
    """An NTC on an MCP3008 with Steinhart–Hart coefficients reads the temperature its resistance means."""
    adc = MockMCP3008(factory)
    ohms = NTC_10K.resistance(25.0)
    adc.ratios[3] = ohms / (ohms + 10_000.0)
    driver = AdcThermometer({"ntc": 3}, NTC_10K, 10_000.0)
    try:
        assert driver.read()[0].value_c == pytest.approx(25.0, abs=0.2)
    finally:
        driver.close()
