"""``coldchain ack CRATE RULE [SENSOR] --by NAME --note TEXT``: acknowledge an active alarm.

Publishes the acknowledgement (QoS 1, not retained) to
``coldchain/v1/acks/{crate}/{rule}/{sensor}``; the gateway records who and when,
and rejects an ack for an alarm that is not active. SENSOR is ``crate`` for
alarms about the whole crate (offline, stale, lid, budget). The broker is given
by the broker options (``--host``, ``--port``, ``--username``, ``--password-file``,
TLS) or by ``--config``: an agent's or gateway's TOML, whose ``[mqtt]`` table is used. Exit status 0 when the
broker accepted the ack, 1 when it could not be delivered, 2 on bad use.
"""

from __future__ import annotations

import argparse
import ssl
import sys
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt

from cli.mqtt_read import BrokerError, BrokerSettings, add_broker_arguments, broker_settings, read_password
from coldchain.argtypes import positive, utf8_text
from coldchain.errors import ConfigError
from coldchain.helptext import help_text
from coldchain.rules import CRATE_SENSOR
from coldchain.topics import IDENTIFIER_RULE, staff_ack_topic, valid_identifier
from coldchain.wire import MAX_ACK_BY, MAX_ACK_NOTE, StaffAck, encode

__all__ = ["AckError", "main", "publish_ack"]


class AckError(Exception):
    """The acknowledgement could not be delivered; the message says what to check."""


def _connect_hint(settings: BrokerSettings) -> str:
    return (
        f"check that the broker runs and listens on {settings.host}:{settings.port}"
        " (--host/--port or [mqtt] host/port in --config), and that TLS is on if the port is a TLS listener"
    )


def publish_ack(config: BrokerSettings, ack: StaffAck, timeout_s: float = 10.0) -> str:
    """Publish ``ack`` with QoS 1, not retained, and wait for the broker's PUBACK; returns the topic."""
    topic = staff_ack_topic(ack.crate, ack.rule, ack.sensor)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"coldchain-ack-{uuid.uuid4().hex[:12]}", protocol=mqtt.MQTTv5
    )
    if config.uses_tls:
        client.tls_set(
            ca_certs=str(config.ca_file) if config.ca_file else None,
            certfile=str(config.cert_file) if config.cert_file else None,
            keyfile=str(config.key_file) if config.key_file else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    if config.username is not None:
        try:
            client.username_pw_set(config.username, read_password(config))
        except BrokerError as exc:
            raise AckError(str(exc)) from None
    connected = threading.Event()
    acked = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        outcome["connect"] = reason
        connected.set()

    def on_publish(client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        outcome["publish"] = reason
        acked.set()

    client.on_connect = on_connect
    client.on_publish = on_publish
    where = f"{config.host}:{config.port}"
    try:
        client.connect(config.host, config.port, keepalive=30)
    except (OSError, ssl.SSLError) as exc:
        raise AckError(f"cannot reach the broker at {where}: {exc}; {_connect_hint(config)}") from None
    client.loop_start()
    try:
        if not connected.wait(timeout_s):
            raise AckError(f"the broker at {where} did not answer within {timeout_s:g} s; {_connect_hint(config)}")
        reason = outcome["connect"]
        if reason.is_failure:
            raise AckError(
                f"the broker at {where} refused the login: {reason}; check --config's username and password_file"
                " (a staff login from 'coldchain provision staff NAME')"
            )
        client.publish(topic, encode(ack), qos=1, retain=False)
        if not acked.wait(timeout_s):
            raise AckError(f"the broker at {where} did not confirm the acknowledgement within {timeout_s:g} s")
        reason = outcome["publish"]
        if reason.is_failure:
            raise AckError(
                f"the broker at {where} refused to take the acknowledgement on {topic}: {reason};"
                " check that the broker's ACL lets this login write coldchain/v1/acks/#"
            )
    finally:
        client.disconnect()
        client.loop_stop()
    return topic


def main(argv: list[str], prog: str = "coldchain ack") -> int:
    """Parse the command line and publish one acknowledgement."""
    parser = argparse.ArgumentParser(
        prog=prog, description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("crate", help="crate id, e.g. C-0042")
    parser.add_argument("rule", help="rule name, e.g. critical_high")
    parser.add_argument("sensor", nargs="?", default=CRATE_SENSOR, help=f"probe id (default: {CRATE_SENSOR})")
    parser.add_argument("--by", required=True, help="your name: who takes responsibility")
    parser.add_argument(
        "--note", required=True, type=utf8_text, help="what you did or will do, e.g. 're-iced at the hub'"
    )
    add_broker_arguments(parser)
    parser.add_argument(
        "--timeout", type=positive, default=10.0, help="seconds to wait for the broker (default 10)"
    )
    args = parser.parse_args(argv)
    for what in ("crate", "rule", "sensor"):
        if not valid_identifier(getattr(args, what)):
            parser.error(
                f"{what} {getattr(args, what)!r} must be {IDENTIFIER_RULE}"
            )
    by = args.by.strip()
    if not by or len(by) > MAX_ACK_BY or not by.isprintable():
        parser.error(f"--by must name you in 1-{MAX_ACK_BY} printable characters")
    if len(args.note) > MAX_ACK_NOTE:
        parser.error(f"--note is {len(args.note)} characters, at most {MAX_ACK_NOTE}")
    try:
        config = broker_settings(args)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    ack = StaffAck(args.crate, args.rule, args.sensor, by, args.note, int(time.time() * 1000))
    try:
        topic = publish_ack(config, ack, args.timeout)
    except AckError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    print(f"acknowledgement by {by} for {args.crate}/{args.rule}/{args.sensor} sent to {topic}")
    return 0
