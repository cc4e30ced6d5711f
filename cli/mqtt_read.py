"""The people's commands' side of MQTT: broker settings and a read-only paho adapter.

paho stops here: its callbacks only convert to ``Inbound`` and enqueue; the
command reads the queue. Settings are named as in the agent's and gateway's
``[mqtt]`` table, so ``--config`` can point at either file.
"""

from __future__ import annotations

import argparse
import os
import queue
import ssl
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from adapters.mqtt_client import broker_client
from adapters.secrets import SecretError
from coldchain.errors import ConfigError
from coldchain.settings.argtypes import port_number, text
from coldchain.settings.broker import CONNECTION_KEYS, FILE_KEYS, PROTOCOLS, BrokerSettings, parse_brokers
from coldchain.settings.table import load_toml

__all__ = [
    "BrokerError",
    "BrokerSettings",
    "Inbound",
    "Subscription",
    "add_broker_arguments",
    "broker_settings",
]

CONNECT_TIMEOUT_S = 5.0
# Keys of the agent's, gateway's and board's [mqtt] tables that only those programs use (their example
# configs document each; a test keeps this list complete). Any other key in --config's [mqtt] is a typo.
PROGRAM_KEYS = frozenset(
    {
        "client_id",
        "keepalive_s",
        "session_expiry",
        "receive_maximum",
        "shared_group",
        "reconnect_min_s",
        "reconnect_max_s",
        "window",
        "refused_retry_s",
        "ack_timeout_s",
        "answer_timeout_s",
    }
)
# An agent's cluster keys (docs/cluster.md): its nodes (instead of host and port) and MQTT version
CLUSTER_KEYS = ("brokers", "protocol")


class BrokerError(Exception):
    """The broker cannot be reached or refused us: the message says which broker and what to check."""


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message from the broker."""

    topic: str
    payload: bytes
    retained: bool


def add_broker_arguments(parser: argparse.ArgumentParser) -> None:
    """The broker options every command that reads MQTT shares."""
    group = parser.add_argument_group("broker (command line overrides --config)")
    group.add_argument("--config", type=Path, help="an agent or gateway TOML file: its [mqtt] table is used")
    group.add_argument("--host", type=text, help="broker host (default 127.0.0.1)")
    group.add_argument("--port", type=port_number, help="broker port (default 1883, 8883 with TLS)")
    group.add_argument("--username", type=text, help="broker login, e.g. staff.alice from 'coldchain provision staff'")
    group.add_argument("--password-file", type=Path, help="file holding the password (first line)")
    group.add_argument("--tls", action="store_true", default=None, help="connect with TLS")
    group.add_argument("--ca-file", type=Path, help="CA certificate to trust (implies --tls)")
    group.add_argument("--cert-file", type=Path, help="client certificate (with --key-file)")
    group.add_argument("--key-file", type=Path, help="client certificate's key")


def _from_file(path: Path) -> BrokerSettings:
    table = load_toml(path).table("mqtt", required=True)
    base = path.parent
    # Only the connection keys are read, without their cross-checks (the options given may complete them):
    # the rest of the table belongs to the program the file configures.
    d = BrokerSettings()
    brokers = parse_brokers(table)
    host, port = brokers[0] if brokers else (d.host, d.port)  # a command that takes one address takes the first node
    settings = BrokerSettings(
        host=table.text("host", host),
        port=table.integer("port", port, minimum=1, maximum=65535),
        username=table.text("username", None),
        password_file=table.file_path("password_file", base),
        tls=table.flag("tls", d.tls),
        ca_file=table.file_path("ca_file", base),
        cert_file=table.file_path("cert_file", base),
        key_file=table.file_path("key_file", base),
        brokers=brokers,
        protocol=table.text("protocol", d.protocol, choices=PROTOCOLS),
    )
    for key in table.data:
        if key not in CONNECTION_KEYS and key not in CLUSTER_KEYS and key not in PROGRAM_KEYS:
            raise table.error(key, "is not a known setting (typo?)")
    return settings


def _readable(settings: BrokerSettings, args: argparse.Namespace) -> None:
    """Every file the connection needs can be read now: say which, before reaching for the broker."""
    for name in FILE_KEYS:
        path: Path | None = getattr(settings, name)
        if path is None or (path.is_file() and os.access(path, os.R_OK)):
            continue
        problem = "no such file" if not path.exists() else "not a readable file"
        if getattr(args, name) is not None:
            raise ConfigError("command line", "--" + name.replace("_", "-"), f"{path}: {problem}")
        raise ConfigError(str(args.config), f"mqtt.{name}", f"{path}: {problem}")


def broker_settings(args: argparse.Namespace) -> BrokerSettings:
    """Settings from ``--config`` (if any), overridden by the command-line options given; ConfigError if unusable."""
    settings = _from_file(args.config) if args.config else BrokerSettings()
    overrides: dict[str, Any] = {n: getattr(args, n) for n in CONNECTION_KEYS if getattr(args, n) is not None}
    if args.host is not None or args.port is not None:
        overrides["brokers"] = ()  # the address given replaces the file's nodes
    settings = replace(settings, **overrides)
    if args.port is None and not args.config and settings.uses_tls:
        settings = replace(settings, port=8883)
    if (settings.cert_file is None) != (settings.key_file is None):
        raise ConfigError("command line", "--cert-file", "a client certificate needs both --cert-file and --key-file")
    if settings.password_file is not None and settings.username is None:
        where = ("command line", "--password-file") if args.password_file else (str(args.config), "mqtt.password_file")
        raise ConfigError(*where, "a password needs a login: give the username too")
    _readable(settings, args)
    return settings


# mosquitto answers a wrong password with "Not authorized" under MQTT 3.1.1: one hint serves both.
_LOGIN_HINT = (
    "check --username/--password-file (or the [mqtt] table of --config) and that the broker's passwd file "
    "holds this login ('coldchain provision staff NAME')"
)
_REFUSALS = {"Bad user name or password": _LOGIN_HINT, "Not authorized": _LOGIN_HINT}


class Subscription:
    """A clean, read-only session subscribed to some topic filters; messages arrive in ``inbox``."""

    def __init__(self, settings: BrokerSettings, filters: list[str]) -> None:
        self.settings = settings
        self.filters = filters
        self.inbox: queue.Queue[Inbound | tuple[str, str]] = queue.Queue()
        self._client: mqtt.Client | None = None  # made by open(): reading the password can fail

    def _new_client(self) -> mqtt.Client:
        """A clean MQTT 3.1.1 session for the settings, its callbacks set (paho takes them only as attributes)."""
        client_id = f"coldchain-cli-{uuid.uuid4().hex[:12]}"
        client = broker_client(replace(self.settings, protocol="3.1.1"), client_id, mqtt.Client)
        client.connect_timeout = CONNECT_TIMEOUT_S
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        return client

    # --- paho callbacks: convert and enqueue, nothing more -------------------------------------
    def _on_connect(self, client: mqtt.Client, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self.inbox.put(("refused", str(reason)))
            return
        # Every (re)connect is a clean session: subscribe again, the broker re-sends retained state.
        client.subscribe([(f, 1) for f in self.filters])

    def _on_subscribe(self, _c: mqtt.Client, _ud: Any, _mid: int, reasons: Any, _props: Any) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        self.inbox.put(("refused", f"subscription refused ({', '.join(failed)})") if failed else ("subscribed", ""))

    def _on_message(self, _c: mqtt.Client, _ud: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            # raised here it would end paho's thread; with U+FFFD in it, the command's decoder refuses it, naming it
            topic = bytes(message._topic).decode("utf-8", "replace")
        self.inbox.put(Inbound(topic, bytes(message.payload), bool(message.retain)))

    def _on_disconnect(self, _c: mqtt.Client, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.inbox.put(("disconnected", str(reason)))

    # --- the command's side --------------------------------------------------------------------
    def open(self) -> None:
        """Connect and subscribe; raise BrokerError saying what to check when that fails."""
        s = self.settings
        try:
            self._client = client = self._new_client()
            client.connect(s.host, s.port, keepalive=s.keepalive_s)
        except SecretError as exc:
            raise BrokerError(f"the broker password: {exc}") from None
        except (OSError, ssl.SSLError, ValueError) as exc:
            hint = (
                "check the CA file and that the broker's certificate names this host"
                if isinstance(exc, ssl.SSLError)
                else "check that mosquitto runs there (systemctl status mosquitto) and that --host/--port "
                "(or the [mqtt] table of --config) name it"
            )
            raise BrokerError(f"cannot reach the MQTT broker at {s.address}: {exc}; {hint}") from None
        client.loop_start()
        event = self._expect(CONNECT_TIMEOUT_S * 2)
        if event != ("subscribed", ""):
            self.close()
            reason = event[1] if event else "no answer"
            hint = _REFUSALS.get(reason, "check the broker's log")
            who = f" as {s.username}" if s.username else " anonymously"
            raise BrokerError(f"the MQTT broker at {s.address} refused us{who}: {reason}; {hint}")

    def _expect(self, timeout: float) -> tuple[str, str] | None:
        """The first connection event (messages before it are kept in order)."""
        held: list[Inbound] = []
        try:
            while True:
                item = self.inbox.get(timeout=timeout)
                if isinstance(item, Inbound):
                    held.append(item)
                    continue
                if item[0] == "disconnected":
                    continue
                return item
        except queue.Empty:
            return None
        finally:
            for message in held:
                self.inbox.put(message)

    def close(self) -> None:
        """Disconnect and stop paho's network thread (nothing to do before ``open``)."""
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
