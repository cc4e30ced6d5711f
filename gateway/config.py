"""The gateway's TOML configuration, checked once at start-up (``config/gateway.toml`` documents every key)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from adapters.secrets import require_files
from coldchain.alarms.lifecycle import LifecyclePolicy, parse_lifecycle_policy
from coldchain.errors import ConfigError
from coldchain.position.geometry import distance_m
from coldchain.position.phases import Area, parse_area
from coldchain.profiles import Profile, load_profiles
from coldchain.settings.broker import FILE_KEYS as BROKER_FILES
from coldchain.settings.broker import BrokerSchema, BrokerSettings, parse_broker
from coldchain.settings.influx import FILE_KEYS as INFLUX_FILES
from coldchain.settings.influx import InfluxSchema, InfluxSettings, parse_influx
from coldchain.settings.table import Table, load_toml
from coldchain.topics import ACKS_FILTER, IDENTIFIER_RULE, ROOT, TELEMETRY_FILTER, valid_identifier
from gateway.cluster_config import ClusterConfig, parse_cluster
from gateway.notify import ChannelConfig, parse_notify

__all__ = [
    "BatchConfig",
    "GatewayConfig",
    "InfluxConfig",
    "MqttConfig",
    "SecurityConfig",
    "Shipment",
    "load_config",
]

# [profiles] default when unset: the product this system is built for (cryopreserved cells)
DEFAULT_PROFILE: Final = "cryo"
SHIPMENT_TEXT_CHARS: Final = 200  # origin, destination, product: a line on a label, not a document
# the gateway takes no client certificate and no broker cluster list (docs/cluster.md: one node's address)
_BROKER: Final = BrokerSchema(
    defaults=BrokerSettings(reconnect_max_s=30.0), client_certificate=False, reconnect_floor_s=0.05
)


@dataclass(frozen=True, slots=True)
class MqttConfig(BrokerSettings):
    """The broker connection (the shared keys) and the durable session on it."""

    client_id: str = "coldchain-gateway"
    session_expiry_s: int = 7 * 86400
    receive_maximum: int = 1000
    shared_group: str | None = None
    reconnect_max_s: float = 30.0

    @property
    def telemetry_filter(self) -> str:
        """The subscription: plain, or shared by a group of gateways (``$share/<group>/...``)."""
        if self.shared_group:
            return f"$share/{self.shared_group}/{TELEMETRY_FILTER}"
        return TELEMETRY_FILTER

    @property
    def filters(self) -> tuple[str, ...]:
        """Every subscription: telemetry, then crate status and events and staff acks (the alarm inputs)."""
        others: tuple[str, ...] = (f"{ROOT}/crates/+/status", f"{ROOT}/crates/+/events", ACKS_FILTER)
        if self.shared_group:
            others = tuple(f"$share/{self.shared_group}/{f}" for f in others)
        return (self.telemetry_filter, *others)


@dataclass(frozen=True, slots=True)
class InfluxConfig(InfluxSettings):
    """Where points go (the shared keys): InfluxDB 1.x through ``/write``, or a v2 API through influxdb-client."""

    startup_wait_s: float = 15.0


@dataclass(frozen=True, slots=True)
class BatchConfig:
    """How readings are grouped into writes, and how failed writes are retried."""

    size: int = 500
    linger_s: float = 0.1
    retry_min_s: float = 0.2
    retry_max_s: float = 30.0
    ack_interval_s: float = 1.0


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    """Message authenticity (per-crate signing keys) and the evidence archive."""

    keys_dir: Path | None = None  # <crate>.key files (hex), as `coldchain provision crate` writes them
    require_signatures: bool = False
    archive: Path | None = None


@dataclass(frozen=True, slots=True)
class Shipment:
    """A ``[shipments."…"]`` record: what the shipment's crates carry, from where to where."""

    id: str
    origin: str | None = None
    destination: str | None = None
    product: str | None = None
    origin_area: Area | None = None  # geofences: the crate's latest fix inside one is in that phase
    destination_area: Area | None = None

    @property
    def details(self) -> dict[str, str]:
        """origin, destination and product, those that are set (the ``shipment`` point's fields)."""
        values = {"origin": self.origin, "destination": self.destination, "product": self.product}
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Everything the gateway needs, validated."""

    source: str
    mqtt: MqttConfig
    influxdb: InfluxConfig
    batch: BatchConfig
    profiles: dict[str, Profile]
    default_profile: str
    crate_profiles: dict[str, str] = field(default_factory=dict)
    state_file: Path | None = None
    forget_after_s: float = 30 * 86400.0  # a crate silent this long, with no open alarm, is forgotten (0: never)
    monitor_interval_s: float = 10.0
    health_file: Path | None = None
    future_tolerance_s: float = 300.0
    alarm_policy: LifecyclePolicy = field(default_factory=LifecyclePolicy)
    notify: tuple[ChannelConfig, ...] = ()
    shipments: dict[str, str] = field(default_factory=dict)  # crate -> shipment id its alarms carry
    shipment_records: dict[str, Shipment] = field(default_factory=dict)  # shipment id -> its [shipments] record
    security: SecurityConfig = field(default_factory=SecurityConfig)
    cluster: ClusterConfig | None = None  # [cluster]: the NATS cluster (python -m gateway.jetstream_main)

    def shipment_of(self, crate: str) -> Shipment | None:
        """The record of the shipment ``crate`` is assigned to (None: no shipment, or an id without a record)."""
        shipment = self.shipments.get(crate)
        return None if shipment is None else self.shipment_records.get(shipment)


def _existing(table: Table, name: str, base: Path) -> Path | None:
    path = table.file_path(name, base)
    if path is not None and not path.is_file():
        raise table.error(name, f"file {path} does not exist")
    return path


def _mqtt(t: Table, base: Path) -> MqttConfig:
    d = MqttConfig()
    config = parse_broker(
        t,
        base,
        _BROKER,
        MqttConfig,
        client_id=t.identifier("client_id", d.client_id),
        session_expiry_s=int(t.duration("session_expiry", d.session_expiry_s, minimum=60, maximum=2**32 - 2)),
        receive_maximum=t.integer("receive_maximum", d.receive_maximum, minimum=1, maximum=65535),
        shared_group=t.identifier("shared_group", None),
    )
    require_files(t, config, BROKER_FILES)
    return config


def _influx(t: Table, base: Path) -> InfluxConfig:
    d = InfluxConfig()
    config = parse_influx(
        t, base, InfluxSchema(), InfluxConfig, startup_wait_s=t.duration("startup_wait", d.startup_wait_s, minimum=0.0)
    )
    require_files(t, config, INFLUX_FILES)
    return config


def _batch(t: Table, receive_maximum: int, source: str) -> BatchConfig:
    d = BatchConfig()
    config = BatchConfig(
        size=t.integer("size", min(d.size, receive_maximum), minimum=1),
        linger_s=t.duration("linger", d.linger_s, minimum=0.0, maximum=60.0),
        retry_min_s=t.duration("retry_min", d.retry_min_s, minimum=0.01),
        retry_max_s=t.duration("retry_max", d.retry_max_s, minimum=0.01),
        ack_interval_s=t.duration("ack_interval", d.ack_interval_s, minimum=0.0),
    )
    if config.size > receive_maximum:
        # the broker stops sending at receive_maximum unacknowledged messages: a bigger batch never fills
        raise ConfigError(
            source, "batch.size", f"{config.size} exceeds mqtt.receive_maximum {receive_maximum}: it would never fill"
        )
    return config


def _security(t: Table, base: Path) -> SecurityConfig:
    keys_dir = t.file_path("keys_dir", base)
    if keys_dir is not None and not keys_dir.is_dir():
        raise t.error("keys_dir", f"directory {keys_dir} does not exist")
    config = SecurityConfig(
        keys_dir=keys_dir, require_signatures=t.flag("require_signatures", False), archive=t.file_path("archive", base)
    )
    if config.require_signatures and keys_dir is None:
        raise t.error("require_signatures", "is true but keys_dir is not set: no key to check signatures with")
    return config


def _shipment_text(t: Table, name: str) -> str | None:
    value: str | None = t.text(name, None)
    if value is None:
        return None
    if not value.strip():
        raise t.error(name, "must not be empty (leave the key out when it is not known)")
    if len(value) > SHIPMENT_TEXT_CHARS:
        raise t.error(name, f"is {len(value)} characters long, at most {SHIPMENT_TEXT_CHARS}")
    if not value.isprintable():
        # it is shown on one line of an e-mail, a report and a webhook receiver's screen
        raise t.error(name, f"{value!r} contains a line break or another control character")
    return value


def _shipments(root: Table, assigned: dict[str, str]) -> dict[str, Shipment]:
    """The ``[shipments]`` records; their ``crates`` lists are added to ``assigned`` (crate -> shipment id).

    A crate is on one shipment at a time: listed by two shipments, or listed by one while its
    ``[crates] shipment`` names another, is refused. A ``[crates] shipment`` naming no record stays
    valid (the id alone is carried, as before records existed).
    """
    table = root.table("shipments")
    records: dict[str, Shipment] = {}
    listed_by: dict[str, str] = {}  # crate -> the shipment whose crates list names it
    for shipment in list(table.keys()):
        entry = table.table(shipment, required=True)
        if not valid_identifier(shipment):
            raise table.error(shipment, f"shipment ids must be {IDENTIFIER_RULE}")
        records[shipment] = Shipment(
            shipment,
            _shipment_text(entry, "origin"),
            _shipment_text(entry, "destination"),
            _shipment_text(entry, "product"),
            parse_area(entry, "origin_area"),
            parse_area(entry, "destination_area"),
        )
        origin, destination = records[shipment].origin_area, records[shipment].destination_area
        if origin is not None and destination is not None:
            gap_km = distance_m(origin.center, destination.center) / 1000.0
            if gap_km < origin.radius_km + destination.radius_km:
                # a fix in both would be in two phases at once
                raise entry.error("destination_area", f"overlaps origin_area (centres {gap_km:.1f} km apart)")
        for crate in entry.text_list("crates", []):
            if not valid_identifier(crate):
                raise entry.error("crates", f"{crate!r} is not a crate id ({IDENTIFIER_RULE})")
            if crate in listed_by:
                first = listed_by[crate]
                where = "listed twice" if first == shipment else f"already in shipments.{first}.crates"
                raise entry.error("crates", f"crate {crate!r} is {where}: a crate is on one shipment at a time")
            listed_by[crate] = shipment
    for crate, shipment in listed_by.items():
        named = assigned.get(crate)
        if named is not None and named != shipment:
            problem = f"{named!r} contradicts shipments.{shipment}.crates, which lists {crate!r}"
            raise ConfigError(root.source, f"crates.{crate}.shipment", problem)
        assigned[crate] = shipment
    return records


def load_config(path: Path) -> GatewayConfig:
    """Read and validate a gateway TOML file; raises ConfigError naming file, key and problem."""
    root = load_toml(path)
    source = root.source
    base = path.resolve().parent
    mqtt = _mqtt(root.table("mqtt"), base)
    influxdb = _influx(root.table("influxdb"), base)
    batch = _batch(root.table("batch"), mqtt.receive_maximum, source)
    profiles_table = root.table("profiles", required=True)
    profiles_path = _existing(profiles_table, "file", base)
    if profiles_path is None:
        raise profiles_table.error("file", "is required but missing")
    profiles = load_profiles(profiles_path)
    default_profile = profiles_table.identifier("default", None)
    if default_profile is None:
        default_profile = DEFAULT_PROFILE
        if default_profile not in profiles:
            problem = f"is unset, and {profiles_path} has no {DEFAULT_PROFILE!r} profile to default to: name one of"
            raise profiles_table.error("default", f"{problem} {sorted(profiles)}")
    elif default_profile not in profiles:
        raise profiles_table.error("default", f"{default_profile!r} is not in {profiles_path} ({sorted(profiles)})")
    crates_table = root.table("crates")
    crate_profiles: dict[str, str] = {}
    shipments: dict[str, str] = {}
    for crate in list(crates_table.keys()):
        entry = crates_table.table(crate, required=True)
        if not valid_identifier(crate):
            raise crates_table.error(crate, f"crate ids must be {IDENTIFIER_RULE}")
        profile = entry.identifier("profile", None)
        if profile is not None:
            if profile not in profiles:
                raise entry.error("profile", f"{profile!r} is not in {profiles_path} ({sorted(profiles)})")
            crate_profiles[crate] = profile
        shipment = entry.identifier("shipment", None)
        if shipment is not None:
            shipments[crate] = shipment
    shipment_records = _shipments(root, shipments)
    state = root.table("state")
    monitoring = root.table("monitoring")
    validation = root.table("validation")
    config = GatewayConfig(
        source=source,
        mqtt=mqtt,
        influxdb=influxdb,
        batch=batch,
        profiles=profiles,
        default_profile=default_profile,
        crate_profiles=crate_profiles,
        state_file=state.file_path("file", base),
        forget_after_s=state.duration("forget_after", 30 * 86400.0, minimum=0.0),
        monitor_interval_s=monitoring.duration("interval", 10.0, minimum=0.0),
        health_file=monitoring.file_path("health_file", base),
        future_tolerance_s=validation.duration("future_tolerance", 300.0, minimum=0.0),
        alarm_policy=parse_lifecycle_policy(root.table("alarms")),
        notify=parse_notify(root.table("notify"), base),
        shipments=shipments,
        shipment_records=shipment_records,
        security=_security(root.table("security"), base),
        cluster=parse_cluster(root.table("cluster")) if "cluster" in root else None,
    )
    root.finish()
    return config
