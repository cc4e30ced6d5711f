"""The board's configuration: read once at start-up, every key checked, defaults in one place."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from adapters.secrets import optional_secret, secret_setting
from board.auth import parse_password_hash
from coldchain.errors import ConfigError
from coldchain.profiles import Profile, load_profiles
from coldchain.settings.broker import BrokerSchema, BrokerSettings, parse_broker
from coldchain.settings.influx import InfluxSchema, InfluxSettings, parse_influx
from coldchain.settings.table import Table, load_toml

__all__ = ["BoardConfig", "BoardInfluxSettings", "CrateInfo", "HttpSettings", "MqttSettings", "User", "load_config"]

AUTH_MODES = ("users", "proxy")
# MQTT 3.1.1 with a clean session: every (re)connect replays the retained alarms and status in full; paho's own
# loop reconnects, waiting 1 s at first, at most 30 s
_BROKER = BrokerSchema(
    defaults=BrokerSettings(protocol="3.1.1", reconnect_min_s=1.0, reconnect_max_s=30.0),
    client_certificate=False,
    tls_flag=False,
    reconnect=False,
    keepalive_max_s=300,
    password_needs_username=False,
)
# InfluxDB 1.x only; the database name goes into the InfluxQL the board sends
_INFLUX = InfluxSchema(
    database_identifier=True, v2=False, timeout_min_s=0.5, timeout_max_s=120.0, password_needs_username=False
)


@dataclass(frozen=True, slots=True)
class User:
    """A staff login of the board; ``password_hash`` is made by ``coldchain board hash-password``."""

    name: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Where the board listens and how it keeps people signed in."""

    host: str
    port: int
    session_hours: float
    secure_cookies: bool
    session_key: bytes | None  # None: a random key per start (a restart signs everyone out)
    auth_mode: str
    proxy_header: str
    users: tuple[User, ...]


@dataclass(frozen=True, slots=True)
class MqttSettings(BrokerSettings):
    """The broker the board watches and publishes acknowledgements to (the shared keys and the board's own)."""

    client_id: str = ""  # paho makes one up
    ack_timeout_s: float = 5.0
    answer_timeout_s: float = 5.0  # how long an acknowledgement waits for the gateway to record or refuse it


@dataclass(frozen=True, slots=True)
class BoardInfluxSettings(InfluxSettings):
    """The InfluxDB 1.x server the per-crate chart reads (InfluxQL over HTTP): the shared keys and the board's."""

    chart_hours: float = 24.0
    max_points: int = 2000
    history_days: float = 31.0  # how far back crate cards look for their shipment's excursions
    history_refresh_s: float = 60.0


@dataclass(frozen=True, slots=True)
class CrateInfo:
    """What the board knows of a crate from configuration (telemetry and alarms add the rest)."""

    crate: str
    profile: str | None
    shipment: str | None
    origin: str | None
    destination: str | None
    product: str | None


@dataclass(frozen=True, slots=True)
class BoardConfig:
    """Everything ``coldchain board`` needs, validated."""

    title: str
    stale_after_s: float
    default_profile: str
    http: HttpSettings
    mqtt: MqttSettings
    influxdb: BoardInfluxSettings
    profiles: dict[str, Profile]
    crates: dict[str, CrateInfo]
    profiles_file: Path | None = None  # where ``profiles`` came from (the release action judges by it too)


def _http(root: Table, base: Path) -> HttpSettings:
    http = root.table("http")
    host = http.text("host", "127.0.0.1")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    auth = root.table("auth")
    mode = auth.text("mode", "users", choices=AUTH_MODES)
    proxy_header = auth.text("proxy_header", "X-Remote-User")
    users = []
    for entry in auth.tables("users"):
        name = entry.identifier("name")
        hashed = entry.text("password_hash")
        try:
            parse_password_hash(hashed)
        except ValueError as exc:
            raise entry.error("password_hash", f"{exc} (make one with 'coldchain board hash-password')") from None
        users.append(User(name, hashed))
    if len({u.name for u in users}) != len(users):
        raise auth.error("users", "user names must be unique")
    if mode == "users" and not users:
        raise auth.error("users", "mode 'users' needs at least one [[auth.users]] entry")
    # A header anyone can send is only an identity when nobody but the proxy can reach us.
    if mode == "proxy" and not loopback:
        raise http.error("host", f"auth mode 'proxy' requires a loopback host, got {host!r}")
    key_text = optional_secret(http, "session_key_file", base)
    if key_text is not None and len(key_text) < 32:
        raise http.error("session_key_file", "the key must be at least 32 characters")
    return HttpSettings(
        host=host,
        port=http.integer("port", 8090, minimum=1, maximum=65535),
        session_hours=http.number("session_hours", 12.0, minimum=0.1, maximum=24.0 * 31),
        secure_cookies=http.flag("secure_cookies", False),
        session_key=key_text.encode() if key_text else None,
        auth_mode=mode,
        proxy_header=proxy_header,
        users=tuple(users),
    )


def _mqtt(root: Table, base: Path) -> MqttSettings:
    mqtt = root.table("mqtt")
    settings = parse_broker(
        mqtt,
        base,
        _BROKER,
        MqttSettings,
        client_id=mqtt.text("client_id", ""),
        ack_timeout_s=mqtt.number("ack_timeout_s", 5.0, minimum=0.5, maximum=60.0),
        answer_timeout_s=mqtt.number("answer_timeout_s", 5.0, minimum=0.5, maximum=60.0),
    )
    if settings.password_file is not None:
        secret_setting(mqtt, "password_file", settings.password_file)  # read again on connecting: refused now
    return settings


def _influx(root: Table, base: Path) -> BoardInfluxSettings:
    influx = root.table("influxdb")
    settings = parse_influx(
        influx,
        base,
        _INFLUX,
        BoardInfluxSettings,
        chart_hours=influx.number("chart_hours", 24.0, minimum=0.01, maximum=24.0 * 92),
        max_points=influx.integer("max_points", 2000, minimum=100, maximum=50_000),
        history_days=influx.number("history_days", 31.0, minimum=1.0, maximum=366.0),
        history_refresh_s=influx.number("history_refresh_s", 60.0, minimum=5.0, maximum=3600.0),
    )
    if settings.password_file is not None:
        secret_setting(influx, "password_file", settings.password_file)  # read again by the reader: refused now
    return settings


def _crates(root: Table) -> dict[str, CrateInfo]:
    crates: dict[str, CrateInfo] = {}
    for entry in root.tables("crates"):
        crate = entry.identifier("id")
        if crate in crates:
            raise entry.error("id", f"crate {crate!r} is listed twice")
        crates[crate] = CrateInfo(
            crate=crate,
            profile=entry.identifier("profile", None),
            shipment=entry.text("shipment", None),
            origin=entry.text("origin", None),
            destination=entry.text("destination", None),
            product=entry.text("product", None),
        )
    return crates


def load_config(path: Path) -> BoardConfig:
    """Read and validate the board's TOML file; relative paths in it are relative to the file."""
    root = load_toml(path)
    base = path.parent
    board = root.table("board")
    profiles_file = board.text("profiles_file", "profiles.toml")
    profiles = load_profiles(base / profiles_file)
    default_profile = board.identifier("default_profile", "cryo")
    if default_profile not in profiles:
        raise board.error("default_profile", f"{default_profile!r} is not in {profiles_file} ({sorted(profiles)})")
    crates = _crates(root)
    for info in crates.values():
        if info.profile is not None and info.profile not in profiles:
            raise ConfigError(str(path), f"crates.{info.crate}.profile", f"{info.profile!r} is not a known profile")
    config = BoardConfig(
        title=board.text("title", "coldchain alert board"),
        stale_after_s=board.number("stale_after_s", 120.0, minimum=1.0),
        default_profile=default_profile,
        http=_http(root, base),
        mqtt=_mqtt(root, base),
        influxdb=_influx(root, base),
        profiles=profiles,
        crates=crates,
        profiles_file=base / profiles_file,
    )
    root.finish()
    return config
