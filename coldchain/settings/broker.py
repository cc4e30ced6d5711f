"""How to reach the MQTT broker: the ``[mqtt]`` keys every program shares, parsed once.

The agent, the gateway, the board and the people's commands read their broker from an
``[mqtt]`` table with the same key names; this module is the one reading of those keys.
A program's own keys (client id, windows, timeouts) stay with the program: its settings
class extends ``BrokerSettings``. Pure parsing: whether a named file exists, and reading a
password, is the adapters' business (``adapters.secrets``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from coldchain.settings.table import Table

S = TypeVar("S", bound="BrokerSettings")

__all__ = [
    "CONNECTION_KEYS",
    "MAX_BROKERS",
    "PROTOCOLS",
    "BrokerSchema",
    "BrokerSettings",
    "parse_broker",
    "parse_brokers",
]

PROTOCOLS: Final = ("5", "3.1.1")
MAX_BROKERS: Final = 16
# the keys a person's command takes from any program's [mqtt] table (cli --config)
CONNECTION_KEYS: Final = ("host", "port", "username", "password_file", "tls", "ca_file", "cert_file", "key_file")
FILE_KEYS: Final = ("ca_file", "cert_file", "key_file", "password_file")


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """One program's way to the broker: address(es), protocol, TLS, login, keepalive, reconnect back-off."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password_file: Path | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 60.0
    # nodes of a clustered broker, tried in turn (empty: host and port); docs/cluster.md
    brokers: tuple[tuple[str, int], ...] = ()
    protocol: str = "5"  # "3.1.1" for brokers that speak no MQTT 5 (nats-server)

    @property
    def addresses(self) -> tuple[tuple[str, int], ...]:
        """Every broker address to try, in order: ``brokers``, else ``host``/``port``."""
        return self.brokers or ((self.host, self.port),)

    @property
    def uses_tls(self) -> bool:
        """TLS is on when asked for or when a CA or client certificate is given."""
        return self.tls or self.ca_file is not None or self.cert_file is not None

    @property
    def address(self) -> str:
        """``host:port`` with the scheme, for messages."""
        return f"{'mqtts' if self.uses_tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class BrokerSchema:
    """Which of the shared keys a program's ``[mqtt]`` table offers, with the program's defaults and bounds."""

    defaults: BrokerSettings = field(default_factory=BrokerSettings)
    client_certificate: bool = True  # cert_file and key_file
    cluster: bool = False  # brokers and protocol
    tls_flag: bool = True  # tls (without it, TLS is on when ca_file is set)
    reconnect: bool = True  # reconnect_min_s and reconnect_max_s (without them, the defaults' bounds)
    password_needs_username: bool = True  # False: a password without a login is ignored (the board, as released)
    reconnect_floor_s: float = 0.01
    keepalive_max_s: int = 3600


def _broker(table: Table, entry: str) -> tuple[str, int]:
    """One ``"host:port"`` (``"[v6 address]:port"``) of ``[mqtt] brokers``."""
    host, colon, port = entry.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or any(c.isspace() for c in host) or "/" in host:
        raise table.error("brokers", f'{entry!r} is not host:port (e.g. "nats-1.example.org:8883")')
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise table.error("brokers", f"{entry!r}: the port must be a number 1-65535")
    return host, int(port)


def parse_brokers(table: Table) -> tuple[tuple[str, int], ...]:
    """``brokers`` of ``[mqtt]`` (or ``[cluster]``): the nodes of a clustered broker, instead of ``host``/``port``."""
    if "brokers" not in table:
        return ()
    entries = table.text_list("brokers")
    if not entries:
        raise table.error("brokers", "must name at least one broker (or leave it out and set host and port)")
    if len(entries) > MAX_BROKERS:
        raise table.error("brokers", f"names {len(entries)} brokers; at most {MAX_BROKERS}")
    if "host" in table or "port" in table:
        raise table.error("brokers", "set either brokers or host and port, not both")
    brokers = tuple(_broker(table, entry) for entry in entries)
    if len(set(brokers)) != len(brokers):
        raise table.error("brokers", f"a broker is listed twice: {entries}")
    return brokers


def parse_broker(table: Table, base: Path, schema: BrokerSchema, settings_class: type[S], **program: Any) -> S:
    """The shared keys of an ``[mqtt]`` table as a ``settings_class`` holding also the ``program``'s own values.

    Relative file names start at ``base`` (the file's directory). Only the keys ``schema`` offers are
    read, so ``Table.finish()`` refuses the others as typos.
    """
    s = schema
    d = s.defaults
    floor = s.reconnect_floor_s
    settings = settings_class(
        **program,
        host=table.text("host", d.host),
        port=table.integer("port", d.port, minimum=1, maximum=65535),
        username=table.text("username", None),
        password_file=table.file_path("password_file", base),
        tls=table.flag("tls", d.tls) if s.tls_flag else d.tls,
        ca_file=table.file_path("ca_file", base),
        cert_file=table.file_path("cert_file", base) if s.client_certificate else None,
        key_file=table.file_path("key_file", base) if s.client_certificate else None,
        keepalive_s=table.integer("keepalive_s", d.keepalive_s, minimum=5, maximum=s.keepalive_max_s),
        reconnect_min_s=table.number("reconnect_min_s", d.reconnect_min_s, minimum=floor)
        if s.reconnect
        else d.reconnect_min_s,
        reconnect_max_s=table.number("reconnect_max_s", d.reconnect_max_s, minimum=floor)
        if s.reconnect
        else d.reconnect_max_s,
        brokers=parse_brokers(table) if s.cluster else (),
        protocol=table.text("protocol", d.protocol, choices=PROTOCOLS) if s.cluster else d.protocol,
    )
    if settings.reconnect_max_s < settings.reconnect_min_s:
        raise table.error("reconnect_max_s", "must not be below reconnect_min_s")
    if (settings.cert_file is None) != (settings.key_file is None):
        raise table.error("cert_file", "a client certificate needs both cert_file and key_file")
    if s.password_needs_username and settings.password_file is not None and settings.username is None:
        raise table.error("password_file", "is set but username is missing")
    return settings
