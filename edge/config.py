"""The agent's TOML configuration, checked once at start-up into frozen values.

Every default lives here; ``config/agent.toml`` documents each key and its trade-off.
Relative paths are resolved against the directory of the config file, so a
config and its spool can move together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from adapters.secrets import require_files, secret_setting
from coldchain.errors import ConfigError
from coldchain.profiles import Profile, load_profiles
from coldchain.settings.broker import FILE_KEYS as BROKER_FILES
from coldchain.settings.broker import BrokerSchema, BrokerSettings, parse_broker
from coldchain.settings.table import Table, load_toml
from coldchain.thermistors import IEC_60751, CallendarVanDusen, SteinhartHart
from coldchain.topics import IDENTIFIER_RULE, reserved_login, valid_identifier
from coldchain.wire import MAX_READINGS
from edge.probes.accel import AccelConfig, parse_accel
from edge.probes.gps_config import GpsConfig, parse_gps

__all__ = [
    "AdcProbeConfig",
    "AgentConfig",
    "AlarmConfig",
    "MqttConfig",
    "ProbeConfig",
    "SerialProbeConfig",
    "SpoolConfig",
    "W1ProbeConfig",
    "load_config",
]

DRIVERS: Final = ("serial", "ds18b20", "mcp3008")
TIME_SOURCES: Final = ("system", "board")
# 14 days at one sample per 10 s: the longest transit the product is sold for, with room
DEFAULT_SPOOL_ROWS: Final = 14 * 24 * 3600 // 10
DS18B20_MIN_C: Final = -55.0
# A live probe jitters in its last digit within a few samples; an hour of identical values at
# the default 10 s period (or 6 min at 1 Hz) means a frozen ADC, board or firmware
DEFAULT_STUCK_SAMPLES: Final = 360
CONVERSIONS: Final = ("pt1000", "pt100", "steinhart_hart")
_BROKER: Final = BrokerSchema(cluster=True)


@dataclass(frozen=True, slots=True)
class MqttConfig(BrokerSettings):
    """Broker connection (the shared keys) and the agent's own session settings."""

    client_id: str = ""
    window: int = 200  # messages handed to paho but not yet PUBACKed
    refused_retry_s: float = 5.0


@dataclass(frozen=True, slots=True)
class SpoolConfig:
    """The store-and-forward spool."""

    path: Path
    max_rows: int = DEFAULT_SPOOL_ROWS
    ack_timeout_s: float = 60.0
    gateway_silent_s: float = 120.0  # published telemetry unacknowledged this long: nobody hears the crate


@dataclass(frozen=True, slots=True)
class SerialProbeConfig:
    """The serial probe board and the sensors it reports."""

    sensors: tuple[str, ...]
    port: str | None = None  # device path, pyserial URL or glob
    usb_serial: str | None = None  # match the USB adapter by its serial number instead
    baudrate: int = 115200
    time_source: str = "system"
    rate_ms: int | None = None
    tick_timeout_s: float = 0.5
    heartbeat_timeout_s: float = 15.0
    power_on_wait_s: float = 0.5  # a session's first samples wait this long for the heartbeat's uptime
    driver: str = "serial"


@dataclass(frozen=True, slots=True)
class W1ProbeConfig:
    """DS18B20 sensors on the 1-wire bus: sensor name -> device id (28-...)."""

    devices: dict[str, str]
    devices_dir: Path
    driver: str = "ds18b20"


@dataclass(frozen=True, slots=True)
class AdcProbeConfig:
    """Resistance thermometers on MCP3008 channels: sensor name -> channel."""

    channels: dict[str, int]
    curve: CallendarVanDusen | SteinhartHart
    series_ohms: float
    spi_device: int = 0
    driver: str = "mcp3008"


ProbeConfig = SerialProbeConfig | W1ProbeConfig | AdcProbeConfig


@dataclass(frozen=True, slots=True)
class AlarmConfig:
    """Local indicators wired to the Pi's GPIO (None: not fitted)."""

    buzzer_pin: str | None = None
    led_pin: str | None = None
    lid_pin: str | None = None
    when: str = "offline"  # sound the local alarm only while offline, or "always"


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Everything the agent needs, validated."""

    source: str
    crate: str
    profile_name: str
    profile: Profile | None
    mqtt: MqttConfig
    spool: SpoolConfig
    probes: tuple[ProbeConfig, ...]
    alarm: AlarmConfig
    sample_period_s: float = 10.0
    stuck_samples: int = DEFAULT_STUCK_SAMPLES
    signing_key: bytes | None = None  # HMAC key provisioned with the crate; None: telemetry unsigned
    gps: GpsConfig | None = None  # a GPS receiver ([gps]); None: the crate reports no position
    accelerometer: AccelConfig | None = None  # an ADXL345 on the Pi's I2C ([accelerometer]); None: none fitted


def _signing_key(table: Table, base: Path) -> bytes | None:
    path = table.file_path("key_file", base)
    if path is None:
        return None
    text = secret_setting(table, "key_file", path)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise table.error("key_file", f"{path} must hold the key as hex (as 'coldchain provision' writes it)") from None
    if len(key) < 16:
        raise table.error("key_file", f"{path} holds a {len(key)}-byte key; at least 16 bytes are needed")
    return key


def _mqtt(table: Table, crate: str, base: Path) -> MqttConfig:
    config = parse_broker(
        table,
        base,
        _BROKER,
        MqttConfig,
        client_id=table.text("client_id", f"coldchain-agent-{crate}"),
        window=table.integer("window", 200, minimum=1, maximum=10_000),
        refused_retry_s=table.number("refused_retry_s", 5.0, minimum=0.01),
    )
    require_files(table, config, BROKER_FILES)
    return config


def _sensors(table: Table) -> tuple[str, ...]:
    sensors = tuple(table.text_list("sensors"))
    if not sensors:
        raise table.error("sensors", "must name at least one sensor")
    for sensor in sensors:
        if not valid_identifier(sensor):
            raise table.error("sensors", f"{sensor!r} is not a valid sensor id ({IDENTIFIER_RULE})")
    if len(set(sensors)) != len(sensors):
        raise table.error("sensors", f"sensor names repeat: {list(sensors)}")
    return sensors


def _serial(table: Table, sensors: tuple[str, ...]) -> SerialProbeConfig:
    port = table.text("port", None)
    usb_serial = table.text("usb_serial", None)
    if (port is None) == (usb_serial is None):
        raise table.error("port", "set exactly one of port (path, URL or glob) and usb_serial")
    return SerialProbeConfig(
        sensors,
        port=port,
        usb_serial=usb_serial,
        baudrate=table.integer("baudrate", 115200, minimum=300),
        time_source=table.text("time_source", "system", choices=TIME_SOURCES),
        rate_ms=table.integer("rate_ms", None, minimum=100, maximum=3_600_000),
        tick_timeout_s=table.number("tick_timeout_s", 0.5, minimum=0.01, maximum=60.0),
        heartbeat_timeout_s=table.number("heartbeat_timeout_s", 15.0, minimum=0.1),
        power_on_wait_s=table.number("power_on_wait_s", 0.5, minimum=0.0, maximum=60.0),
    )


def _ds18b20(table: Table, sensors: tuple[str, ...], profile: Profile | None, base: Path) -> W1ProbeConfig:
    devices = table.text_list("devices")
    if len(devices) != len(sensors):
        raise table.error("devices", f"needs one 1-wire id per sensor ({len(sensors)}), got {len(devices)}")
    for device in devices:
        if not device.startswith("28-"):
            raise table.error("devices", f"{device!r} is not a DS18B20 id (28-xxxxxxxxxxxx)")
    if profile is not None:
        coldest = min(rule.threshold_c for rule in profile.rules)
        if coldest < DS18B20_MIN_C:
            raise table.error(
                "driver",
                f"a DS18B20 reads only down to {DS18B20_MIN_C:.0f} °C but profile {profile.name!r} has a limit at "
                f"{coldest:.0f} °C: use the serial probe board (PT100/PT1000) for this cargo",
            )
    return W1ProbeConfig(
        dict(zip(sensors, devices, strict=True)),
        table.file_path("devices_dir", base, "/sys/bus/w1/devices") or Path("/sys/bus/w1/devices"),
    )


def _mcp3008(table: Table, sensors: tuple[str, ...]) -> AdcProbeConfig:
    channels = table.integer_list("channels")
    if len(channels) != len(sensors) or not all(0 <= c <= 7 for c in channels):
        raise table.error("channels", f"needs one channel 0-7 per sensor ({len(sensors)}), got {channels!r}")
    if len(set(channels)) != len(channels):
        raise table.error("channels", f"channels repeat: {channels}")
    conversion = table.text("conversion", "pt1000", choices=CONVERSIONS)
    curve: CallendarVanDusen | SteinhartHart
    if conversion == "steinhart_hart":
        coefficients = table.number_list("coefficients")
        if len(coefficients) != 3:
            raise table.error("coefficients", f"needs three numbers [a, b, c], got {coefficients!r}")
        curve = SteinhartHart(*coefficients)
    else:
        curve = IEC_60751(1000.0 if conversion == "pt1000" else 100.0)
    return AdcProbeConfig(
        dict(zip(sensors, channels, strict=True)),
        curve,
        series_ohms=table.number("series_ohms", 1000.0, minimum=1.0),
        spi_device=table.integer("spi_device", 0, minimum=0, maximum=1),
    )


def _probe(table: Table, profile: Profile | None, base: Path) -> ProbeConfig:
    driver = table.text("driver", choices=DRIVERS)
    sensors = _sensors(table)
    if driver == "serial":
        return _serial(table, sensors)
    if driver == "ds18b20":
        return _ds18b20(table, sensors, profile, base)
    return _mcp3008(table, sensors)


def _profile(root: Table, base: Path, name: str) -> Profile | None:
    table = root.table("profiles")
    path = table.file_path("file", base)
    if path is None:
        return None
    if not path.is_file():
        raise table.error("file", f"cannot read {path}: no such file")
    profiles = load_profiles(path)
    if name not in profiles:
        raise ConfigError(root.source, "crate.profile", f"{name!r} is not a profile in {path} ({sorted(profiles)})")
    return profiles[name]


def _sensor_names(probe: ProbeConfig) -> tuple[str, ...]:
    if isinstance(probe, SerialProbeConfig):
        return probe.sensors
    if isinstance(probe, W1ProbeConfig):
        return tuple(probe.devices)
    return tuple(probe.channels)


def parse_config(data: dict[str, object], source: str, base: Path) -> AgentConfig:
    """Validate a parsed agent config; ``base`` is the directory relative paths start from."""
    root = Table(data, source)
    crate_table = root.table("crate", required=True)
    crate = crate_table.identifier("id")
    if reserved_login(crate):
        # the gateway refuses everything such a crate sends: say so now, not after a shipment
        raise crate_table.error("id", f"{crate!r} is a staff or service login (staff.*, coldchain-*), never a crate")
    profile_name = crate_table.identifier("profile")
    profile = _profile(root, base, profile_name)
    spool_table = root.table("spool")
    spool = SpoolConfig(
        path=spool_table.file_path("path", base, "spool.sqlite") or base / "spool.sqlite",
        max_rows=spool_table.integer("max_rows", DEFAULT_SPOOL_ROWS, minimum=10),
        ack_timeout_s=spool_table.number("ack_timeout_s", 60.0, minimum=0.1),
        gateway_silent_s=spool_table.number("gateway_silent_s", 120.0, minimum=1.0, maximum=86_400.0),
    )
    probes = tuple(_probe(t, profile, base) for t in root.tables("probes"))
    if not probes:
        raise root.error("probes", "configure at least one [[probes]] entry")
    names = [s for p in probes for s in _sensor_names(p)]
    if len(set(names)) != len(names):
        raise root.error("probes", f"a sensor name is used by two probes: {names}")
    # one message carries a serial board's sensors, or all polled sensors together
    polled = [s for p in probes if not isinstance(p, SerialProbeConfig) for s in _sensor_names(p)]
    largest = max([len(polled)] + [len(p.sensors) for p in probes if isinstance(p, SerialProbeConfig)])
    if largest > MAX_READINGS:
        raise root.error("probes", f"{largest} sensors in one message; the wire allows at most {MAX_READINGS}")
    alarm_table = root.table("alarm")
    alarm = AlarmConfig(
        buzzer_pin=alarm_table.text("buzzer_pin", None),
        led_pin=alarm_table.text("led_pin", None),
        lid_pin=alarm_table.text("lid_pin", None),
        when=alarm_table.text("when", "offline", choices=("offline", "always")),
    )
    agent_table = root.table("agent")
    config = AgentConfig(
        source=source,
        crate=crate,
        profile_name=profile_name,
        profile=profile,
        mqtt=_mqtt(root.table("mqtt"), crate, base),
        spool=spool,
        probes=probes,
        alarm=alarm,
        sample_period_s=agent_table.number("sample_period_s", 10.0, minimum=0.01),
        stuck_samples=agent_table.integer("stuck_samples", DEFAULT_STUCK_SAMPLES, minimum=0),
        signing_key=_signing_key(root.table("signing"), base),
        gps=parse_gps(root.table("gps")),
        accelerometer=parse_accel(root.table("accelerometer")) if "accelerometer" in root else None,
    )
    root.finish()
    return config


def load_config(path: Path) -> AgentConfig:
    """Read and validate the agent config file at ``path``."""
    root = load_toml(path)
    return parse_config(dict(root.data), root.source, path.resolve().parent)
