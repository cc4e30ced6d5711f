"""The agent's TOML configuration, checked once at start-up into frozen values.

Every default lives here; ``config/agent.toml`` documents each key and its trade-off.
Relative paths are resolved against the directory of the config file, so a
config and its spool can move together.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from coldchain.errors import ConfigError
from coldchain.profiles import Profile, parse_profiles
from coldchain.settings import Table

__all__ = [
    "AgentConfig",
    "AlarmConfig",
    "MqttConfig",
    "ProbeConfig",
    "SpoolConfig",
    "load_config",
]

DRIVERS: Final = ("serial", "ds18b20", "mcp3008")
TIME_SOURCES: Final = ("system", "board")
# 14 days at one sample per 10 s: the longest transit the product is sold for, with room
DEFAULT_SPOOL_ROWS: Final = 14 * 24 * 3600 // 10
DS18B20_MIN_C: Final = -55.0


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """Broker connection."""

    host: str
    port: int
    client_id: str
    keepalive_s: int = 30
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password_file: Path | None = None
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 60.0
    window: int = 200  # messages handed to paho but not yet PUBACKed


@dataclass(frozen=True, slots=True)
class SpoolConfig:
    """The store-and-forward spool."""

    path: Path
    max_rows: int = DEFAULT_SPOOL_ROWS
    ack_timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    """One probe driver and the sensors it reads."""

    driver: str
    sensors: tuple[str, ...]
    port: str | None = None  # serial: device path, pyserial URL or glob
    usb_serial: str | None = None  # serial: match the USB adapter by its serial number instead
    baudrate: int = 115200
    time_source: str = "system"
    rate_ms: int | None = None
    tick_timeout_s: float = 0.5
    heartbeat_timeout_s: float = 15.0


@dataclass(frozen=True, slots=True)
class AlarmConfig:
    """Local indicators wired to the Pi's GPIO (None: not fitted)."""

    buzzer_pin: str | None = None
    led_pin: str | None = None
    lid_pin: str | None = None


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
    stuck_samples: int = 0


def _path(table: Table, name: str, base: Path, default: str | None = None) -> Path | None:
    raw = table.text(name, default)
    if raw is None:
        return None
    if not raw:
        raise table.error(name, "must not be empty")
    path = Path(raw)
    return path if path.is_absolute() else base / path


def _mqtt(table: Table, crate: str, base: Path) -> MqttConfig:
    config = MqttConfig(
        host=table.text("host", "127.0.0.1"),
        port=table.integer("port", 1883, minimum=1, maximum=65535),
        client_id=table.text("client_id", f"coldchain-agent-{crate}"),
        keepalive_s=table.integer("keepalive_s", 30, minimum=5, maximum=3600),
        tls=table.flag("tls", False),
        ca_file=_path(table, "ca_file", base),
        cert_file=_path(table, "cert_file", base),
        key_file=_path(table, "key_file", base),
        username=table.text("username", None),
        password_file=_path(table, "password_file", base),
        reconnect_min_s=table.number("reconnect_min_s", 0.5, minimum=0.01),
        reconnect_max_s=table.number("reconnect_max_s", 60.0, minimum=0.01),
        window=table.integer("window", 200, minimum=1, maximum=10_000),
    )
    if config.reconnect_max_s < config.reconnect_min_s:
        raise table.error("reconnect_max_s", "must not be below reconnect_min_s")
    if (config.cert_file is None) != (config.key_file is None):
        raise table.error("cert_file", "a client certificate needs both cert_file and key_file")
    if config.password_file is not None and config.username is None:
        raise table.error("password_file", "is set but username is missing")
    for name in ("ca_file", "cert_file", "key_file", "password_file"):
        path = getattr(config, name)
        if path is not None and not path.is_file():
            raise table.error(name, f"file {path} does not exist")
    return config


def _probe(table: Table, profile: Profile | None) -> ProbeConfig:
    driver = table.text("driver", choices=DRIVERS)
    sensors = tuple(table.text_list("sensors"))
    if not sensors:
        raise table.error("sensors", "must name at least one sensor")
    for sensor in sensors:
        if not Table({"s": sensor}, table.source, table.key("sensors")).identifier("s"):
            raise table.error("sensors", f"{sensor!r} is not a valid sensor id")
    if len(set(sensors)) != len(sensors):
        raise table.error("sensors", f"sensor names repeat: {list(sensors)}")
    if driver == "serial":
        port = table.text("port", None)
        usb_serial = table.text("usb_serial", None)
        if (port is None) == (usb_serial is None):
            raise table.error("port", "set exactly one of port (path, URL or glob) and usb_serial")
        return ProbeConfig(
            driver,
            sensors,
            port=port,
            usb_serial=usb_serial,
            baudrate=table.integer("baudrate", 115200, minimum=300),
            time_source=table.text("time_source", "system", choices=TIME_SOURCES),
            rate_ms=table.integer("rate_ms", None, minimum=100, maximum=3_600_000),
            tick_timeout_s=table.number("tick_timeout_s", 0.5, minimum=0.01, maximum=60.0),
            heartbeat_timeout_s=table.number("heartbeat_timeout_s", 15.0, minimum=0.1),
        )
    raise table.error("driver", f"driver {driver!r} is not available in this build")


def _profile(root: Table, base: Path, name: str) -> Profile | None:
    table = root.table("profiles")
    path = _path(table, "file", base)
    if path is None:
        return None
    try:
        text = path.read_text()
    except OSError as exc:
        raise table.error("file", f"cannot read {path}: {exc.strerror}") from None
    try:
        profiles = parse_profiles(Table(tomllib.loads(text), str(path)))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None
    if name not in profiles:
        raise ConfigError(root.source, "crate.profile", f"{name!r} is not a profile in {path} ({sorted(profiles)})")
    return profiles[name]


def parse_config(data: dict[str, object], source: str, base: Path) -> AgentConfig:
    """Validate a parsed agent config; ``base`` is the directory relative paths start from."""
    root = Table(data, source)
    crate_table = root.table("crate", required=True)
    crate = crate_table.identifier("id")
    profile_name = crate_table.identifier("profile")
    profile = _profile(root, base, profile_name)
    spool_table = root.table("spool")
    spool = SpoolConfig(
        path=_path(spool_table, "path", base, "spool.sqlite") or base / "spool.sqlite",
        max_rows=spool_table.integer("max_rows", DEFAULT_SPOOL_ROWS, minimum=10),
        ack_timeout_s=spool_table.number("ack_timeout_s", 60.0, minimum=0.1),
    )
    probes = tuple(_probe(t, profile) for t in root.tables("probes"))
    if not probes:
        raise root.error("probes", "configure at least one [[probes]] entry")
    names = [s for p in probes for s in p.sensors]
    if len(set(names)) != len(names):
        raise root.error("probes", f"a sensor name is used by two probes: {names}")
    alarm_table = root.table("alarm")
    alarm = AlarmConfig(
        buzzer_pin=alarm_table.text("buzzer_pin", None),
        led_pin=alarm_table.text("led_pin", None),
        lid_pin=alarm_table.text("lid_pin", None),
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
        stuck_samples=agent_table.integer("stuck_samples", 0, minimum=0),
    )
    root.finish()
    return config


def load_config(path: Path) -> AgentConfig:
    """Read and validate the agent config file at ``path``."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None
    return parse_config(data, str(path), path.resolve().parent)
