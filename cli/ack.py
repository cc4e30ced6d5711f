"""``coldchain ack CRATE RULE [SENSOR] --by NAME --note TEXT``: take on an alarm, and know it was recorded.

Reads the alarm's retained state, publishes the acknowledgement (QoS 1, not retained) to
``coldchain/v1/acks/{crate}/{rule}/{sensor}`` and waits (``--timeout``) for the gateway's answer:
the retained alarm acknowledged by NAME (recorded), or the gateway's refusal with its reason on
``coldchain/v1/rejected``. An alarm that cleared before anyone acknowledged it (a late excursion
included) is reviewed the same way: the gateway records who looked at it and the note.

SENSOR is the probe the alarm is about, ``crate`` for alarms about the whole crate (offline, stale,
lid, budget). Left out, it is taken from the broker only when exactly one alarm of CRATE and RULE
awaits someone; with several the ack is not sent and the candidates are listed.

The broker is given by the broker options (``--host``, ``--port``, ``--username``, ``--password-file``,
TLS) or by ``--config``: an agent's or gateway's TOML, whose ``[mqtt]`` table is used; an agent's
``brokers`` (the nodes of a cluster) are tried in turn. MQTT 5 unless ``--protocol 3.1.1`` or the
table's ``protocol = "3.1.1"`` (nats-server speaks no MQTT 5): the same guarantee either way, as the
command waits for the gateway's answer to its request id. Exit status 0
when the gateway recorded the acknowledgement; 1 when it refused it, did not answer, or the broker
could not be used; 2 on bad use (an ambiguous alarm included).
"""

from __future__ import annotations

import argparse
import queue
import ssl
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt

from adapters.mqtt_client import broker_client
from adapters.secrets import SecretError
from cli.mqtt_read import BrokerSettings, add_broker_arguments, broker_settings
from coldchain.alarms.ack_answer import AckAnswer, answer_to
from coldchain.errors import ConfigError, WireFormatError
from coldchain.helptext import help_text
from coldchain.settings.argtypes import positive, utf8_text
from coldchain.settings.broker import PROTOCOLS
from coldchain.topics import IDENTIFIER_RULE, ROOT, rejected_topic, staff_ack_topic, valid_identifier
from coldchain.wire import MAX_ACK_BY, MAX_ACK_NOTE, AlarmView, StaffAck, decode_alarm, encode

__all__ = ["AckError", "main"]

DEFAULT_TIMEOUT_S = 5.0


class AckError(Exception):
    """The acknowledgement could not be delivered; the message says what to check."""


class AmbiguousAlarmError(Exception):
    """SENSOR was left out and the broker holds no single alarm it could mean."""


def _connect_hint(settings: BrokerSettings) -> str:
    return (
        f"check that the broker runs and listens on {settings.host}:{settings.port}"
        " (--host/--port or [mqtt] host/port in --config), and that TLS is on if the port is a TLS listener"
    )


class AckSession:
    """One MQTT connection: subscribe, publish one ack, and read what arrives (paho's thread only enqueues)."""

    def __init__(self, config: BrokerSettings, timeout_s: float) -> None:
        self.config = config
        self.timeout_s = timeout_s
        self.where = f"{config.host}:{config.port}"
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._client: mqtt.Client  # made by open(): reading the password can fail

    def _new_client(self) -> mqtt.Client:
        """A client for the settings (MQTT 5 or 3.1.1), its callbacks set (paho takes them only as attributes)."""
        client_id = f"coldchain-ack-{uuid.uuid4().hex[:12]}"
        client = broker_client(self.config, client_id, mqtt.Client)
        client.on_connect = lambda c, u, f, reason, p: self._events.put(("connect", reason))
        client.on_subscribe = lambda c, u, mid, reasons, p: self._events.put(("subscribe", reasons))
        client.on_publish = lambda c, u, mid, reason, p: self._events.put(("publish", reason))
        client.on_message = self._on_message
        return client

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            return  # no alarm or refusal of ours has such a topic
        self.inbox.put((topic, bytes(message.payload)))

    def _expect(self, kind: str, what: str) -> Any:
        deadline = time.monotonic() + self.timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                event, value = self._events.get(timeout=left)
            except queue.Empty:
                break
            if event == kind:
                return value
        raise AckError(f"the broker at {self.where} did not {what} within {self.timeout_s:g} s")

    def open(self) -> None:
        """Connect to the first broker address that answers; AckError saying what to check when none does."""
        config = self.config
        try:
            self._client = self._new_client()
        except SecretError as exc:
            raise AckError(f"the broker password: {exc}") from None
        for host, port in config.addresses:
            self.where = f"{host}:{port}"
            try:
                self._client.connect(host, port, keepalive=config.keepalive_s)
                break
            except (OSError, ssl.SSLError) as exc:
                unreachable = f"cannot reach the broker at {self.where}: {exc}"
        else:
            hint = _connect_hint(replace(config, host=host, port=port))
            raise AckError(f"{unreachable}; {hint}") from None
        self._client.loop_start()
        try:
            reason = self._expect("connect", "answer")
        except AckError as exc:
            raise AckError(f"{exc}; {_connect_hint(config)}") from None
        if reason.is_failure:
            raise AckError(
                f"the broker at {self.where} refused the login: {reason}; check --config's username and password_file"
                " (a staff login from 'coldchain provision staff NAME')"
            )

    def subscribe(self, topic_filter: str) -> None:
        """Subscribe at QoS 1 and wait for the broker's SUBACK (retained messages come before the next one)."""
        self._client.subscribe(topic_filter, qos=1)
        reasons = self._expect("subscribe", f"confirm the subscription to {topic_filter}")
        if any(r.is_failure for r in reasons):
            raise AckError(f"the broker at {self.where} refused a subscription to {topic_filter}: {reasons[0]}")

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1, not retained, and wait for the broker's PUBACK."""
        self._client.publish(topic, payload, qos=1, retain=False)
        reason = self._expect("publish", "confirm the acknowledgement")
        if reason.is_failure:
            raise AckError(
                f"the broker at {self.where} refused to take the acknowledgement on {topic}: {reason};"
                " check that the broker's ACL lets this login write coldchain/v1/acks/#"
            )

    def close(self) -> None:
        """Disconnect and stop paho's thread."""
        self._client.disconnect()
        self._client.loop_stop()


def _retained(session: AckSession, crate: str, rule: str) -> dict[str, AlarmView]:
    """The retained alarms of crate/rule by sensor (those that arrived before the second SUBACK)."""
    alarms: dict[str, AlarmView] = {}
    while True:
        try:
            topic, payload = session.inbox.get_nowait()
        except queue.Empty:
            return alarms
        try:
            alarm = decode_alarm(topic, payload)
        except WireFormatError:
            continue  # not one a person could have been shown either
        if alarm is not None and alarm.key[:2] == (crate, rule):
            alarms[alarm.sensor] = alarm


def _describe(alarm: AlarmView) -> str:
    state = "needs review" if alarm.needs_review else alarm.state
    return f"{alarm.sensor} ({alarm.severity}, {state}, since {_utc(alarm.started_ts)} UTC)"


def choose_sensor(crate: str, rule: str, alarms: dict[str, AlarmView]) -> str:
    """The sensor a left-out SENSOR means: the one alarm of crate/rule awaiting someone; never a guess."""
    awaiting = [a for a in alarms.values() if a.state == "active" or a.needs_review]
    if len(awaiting) == 1:
        return awaiting[0].sensor
    if awaiting:
        listed = ", ".join(_describe(a) for a in sorted(awaiting, key=lambda a: a.sensor))
        raise AmbiguousAlarmError(
            f"{crate} has {len(awaiting)} {rule} alarms awaiting someone: {listed}; name the SENSOR"
            f" (e.g. coldchain ack {crate} {rule} {awaiting[0].sensor} ...)"
        )
    if len(alarms) == 1:
        return next(iter(alarms))  # the gateway says why it cannot be acknowledged
    if alarms:
        listed = ", ".join(_describe(a) for a in sorted(alarms.values(), key=lambda a: a.sensor))
        raise AmbiguousAlarmError(f"{crate} has no {rule} alarm awaiting someone ({listed}); name the SENSOR")
    raise AmbiguousAlarmError(
        f"the broker holds no {rule} alarm of {crate}: check the crate and rule ('coldchain alerts' lists them)"
    )


def _utc(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return f"epoch ms {ms}"


def acknowledge(
    config: BrokerSettings, crate: str, rule: str, sensor: str | None, *, by: str, note: str, timeout_s: float
) -> tuple[StaffAck, AckAnswer | None]:
    """Send the ack and wait for the gateway's answer (None: no answer within ``timeout_s``)."""
    session = AckSession(config, timeout_s)
    session.open()
    try:
        session.subscribe(f"{ROOT}/alarms/{crate}/{rule}/+")
        # refusals carry our request id; its SUBACK also says the retained alarms above have arrived
        session.subscribe(rejected_topic())
        alarms = _retained(session, crate, rule)
        if sensor is None:
            sensor = choose_sensor(crate, rule, alarms)
        seen = alarms.get(sensor)
        ack = StaffAck(
            crate, rule, sensor, by, note, int(time.time() * 1000),
            request=uuid.uuid4().hex, alarm_id=seen.alarm_id if seen is not None else None,
        )  # fmt: skip
        session.publish(staff_ack_topic(crate, rule, sensor), encode(ack))
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                topic, payload = session.inbox.get(timeout=left)
            except queue.Empty:
                break
            answer = answer_to(ack, topic, payload)
            if answer is not None:
                return ack, answer
        return ack, None
    finally:
        session.close()


def _report(prog: str, ack: StaffAck, answer: AckAnswer | None, timeout_s: float) -> int:
    what = f"{ack.crate}/{ack.rule}/{ack.sensor}"
    if answer is None:
        print(
            f"{prog}: NOT CONFIRMED: the gateway did not answer within {timeout_s:g} s. The broker took the"
            f" acknowledgement of {what}, but nothing says it was recorded: check that the gateway runs, and that"
            " this login may read coldchain/v1/rejected (where refusals are said) and, over MQTT 3.1.1 (whose"
            " PUBACK cannot refuse), write coldchain/v1/acks/#; 'coldchain alerts' shows the alarm's state",
            file=sys.stderr,
        )
        return 1
    if not answer.recorded:
        print(f"{prog}: REFUSED by the gateway: {answer.reason}", file=sys.stderr)
        return 1
    alarm = answer.alarm
    assert alarm is not None
    taken = "reviewed (it had cleared)" if alarm.state == "cleared" else "acknowledged"
    print(f"recorded: alarm {alarm.alarm_id} {taken} by {ack.by} at {_utc(ack.ts)} UTC")
    return 0


def main(argv: list[str], prog: str = "coldchain ack") -> int:
    """Parse the command line, send one acknowledgement and report the gateway's answer."""
    parser = argparse.ArgumentParser(
        prog=prog, description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("crate", help="crate id, e.g. C-0042")
    parser.add_argument("rule", help="rule name, e.g. critical_high")
    parser.add_argument(
        "sensor", nargs="?", default=None, help="probe id, or crate for whole-crate alarms (default: the only one open)"
    )
    parser.add_argument("--by", required=True, help="your name: who takes responsibility")
    parser.add_argument(
        "--note", required=True, type=utf8_text, help="what you did or will do, e.g. 're-iced at the hub'"
    )
    add_broker_arguments(parser)
    parser.add_argument(
        "--protocol", choices=PROTOCOLS, help='MQTT version (default: --config\'s [mqtt] protocol, else "5")'
    )
    parser.add_argument(
        "--timeout",
        type=positive,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds to wait for the broker, then for the gateway's answer (default {DEFAULT_TIMEOUT_S:g})",
    )
    args = parser.parse_args(argv)
    for what in ("crate", "rule", "sensor"):
        value = getattr(args, what)
        if value is not None and not valid_identifier(value):
            parser.error(f"{what} {value!r} must be {IDENTIFIER_RULE}")
    by = args.by.strip()
    if not by or len(by) > MAX_ACK_BY or not by.isprintable():
        parser.error(f"--by must name you in 1-{MAX_ACK_BY} printable characters")
    if len(args.note) > MAX_ACK_NOTE:
        parser.error(f"--note is {len(args.note)} characters, at most {MAX_ACK_NOTE}")
    if not args.timeout > 0:
        parser.error("--timeout must be a positive number of seconds")
    try:
        config = broker_settings(args)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    if args.protocol is not None:
        config = replace(config, protocol=args.protocol)
    try:
        ack, answer = acknowledge(
            config, args.crate, args.rule, args.sensor, by=by, note=args.note, timeout_s=args.timeout
        )
    except AmbiguousAlarmError as exc:
        print(f"{prog}: not sent: {exc}", file=sys.stderr)
        return 2
    except AckError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    return _report(prog, ack, answer, args.timeout)
