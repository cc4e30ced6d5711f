"""The board's one paho adapter: callbacks convert broker messages to board events and hand them off.

paho runs its own network thread; nothing here touches board state. Every message
becomes one event passed to ``deliver`` (the web app hands it to its event loop).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from adapters.liveness import Heartbeat
from adapters.mqtt_client import broker_client
from board.config import MqttSettings
from board.messages import ALARM_FILTER, STATUS_FILTER
from coldchain.errors import WireFormatError
from coldchain.topics import (
    PARTITIONED_TELEMETRY_FILTER,
    REJECTED,
    STATUS,
    TELEMETRY,
    TELEMETRY_FILTER,
    parse_topic,
    refuse_reserved_crate,
    rejected_topic,
    unpartitioned,
)
from coldchain.wire import AlarmView, CrateStatus, Telemetry, decode_alarm, decode_status, decode_telemetry

__all__ = ["AckNotSentError", "BoardEvent", "BrokerLink"]

log = logging.getLogger("coldchain.board.broker")

_PASS_S = 1.0  # paho's network loop (loop_start) waits for the socket this long at most per pass
_CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class BoardEvent:
    """One thing that happened on the broker side.

    ``kind`` is ``alarm`` (``key``, ``alarm`` None when removed), ``status``, ``telemetry``,
    ``rejected`` (``raw``: the gateway's refusal as published, judged by whoever waits for one)
    or ``connection`` (``connected`` says which way, ``reason`` why).
    """

    kind: str
    key: tuple[str, str, str] | None = None
    alarm: AlarmView | None = None
    status: CrateStatus | None = None
    telemetry: Telemetry | None = None
    connected: bool = False
    reason: str = ""
    raw: bytes = b""
    live: bool = False  # a status published while we listen (not the retained one replayed on subscribing)


def _topic(message: mqtt.MQTTMessage) -> str:
    """The message's topic; one that is not UTF-8 (a broker should never pass it on) breaks the contract."""
    try:
        return unpartitioned(message.topic)
    except UnicodeDecodeError:
        raise WireFormatError("topic", "the topic is not UTF-8") from None


def _shown_topic(message: mqtt.MQTTMessage) -> str:
    """The topic for a log line, whatever its bytes (paho keeps them in ``_topic``)."""
    return bytes(message._topic).decode("utf-8", "replace")[:200]


class _WatchedClient(mqtt.Client):
    """paho's client whose network thread stamps ``heartbeat`` on every pass of its loop (systemd's watchdog)."""

    def __init__(self, heartbeat: Heartbeat, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.heartbeat = heartbeat

    def loop_misc(self) -> MQTTErrorCode:
        self.heartbeat.beat(_PASS_S)
        return super().loop_misc()


class AckNotSentError(Exception):
    """The acknowledgement did not reach the broker; ``sent_maybe`` when it may still arrive."""

    def __init__(self, message: str, sent_maybe: bool = False) -> None:
        super().__init__(message)
        self.sent_maybe = sent_maybe


class BrokerLink:
    """Subscribes to alarms, crate status and telemetry; publishes staff acknowledgements."""

    def __init__(self, settings: MqttSettings, deliver: Callable[[BoardEvent], None]) -> None:
        self._settings = settings
        self._deliver = deliver
        self._connected = threading.Event()
        self.rejected = 0  # messages that broke the contract, counted and logged
        # paho's network thread: every pass while connected, or its reconnect wait and attempt
        # the longest paho's thread is away between passes: its back-off, then a connect (TCP, then TLS)
        self._away_s = settings.reconnect_max_s + 2 * _CONNECT_TIMEOUT_S
        self.heartbeat = Heartbeat("the broker subscription thread", self._away_s)
        # MQTT 3.1.1, clean session: every (re)connect replays the retained alarms and status in full
        client = broker_client(settings, settings.client_id, _WatchedClient, heartbeat=self.heartbeat)
        client.connect_timeout = _CONNECT_TIMEOUT_S
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client

    @property
    def connected(self) -> bool:
        """True while the session with the broker is up."""
        return self._connected.is_set()

    def start(self) -> None:
        """Connect in the background; paho retries until the broker answers."""
        self._client.connect_async(self._settings.host, self._settings.port, keepalive=self._settings.keepalive_s)
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect and stop paho's thread."""
        self._client.disconnect()
        self._client.loop_stop()

    def publish_ack(self, topic: str, payload: bytes) -> None:
        """Publish an acknowledgement at QoS 1 and wait for the broker's PUBACK (blocking)."""
        if not self._connected.is_set():
            # Not queued for later: staff must know now that it did not go.
            raise AckNotSentError(f"not connected to the broker at {self._settings.host}:{self._settings.port}")
        info = self._client.publish(topic, payload, qos=1, retain=False)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise AckNotSentError(f"the broker refused it ({mqtt.error_string(info.rc)})")
        try:
            info.wait_for_publish(timeout=self._settings.ack_timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise AckNotSentError(f"the connection dropped while sending ({exc})", sent_maybe=True) from None
        if not info.is_published():
            raise AckNotSentError(f"no confirmation from the broker within {self._settings.ack_timeout_s:g} s", True)

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("broker %s:%s refused the board: %s", self._settings.host, self._settings.port, reason)
            self._deliver(BoardEvent("connection", connected=False, reason=str(reason)))
            return
        if self._connected.is_set():
            return  # paho may report one connection twice; subscribe once per session
        self._connected.set()
        # rejected: the gateway's answer when it refuses an acknowledgement sent from the page
        filters = [(ALARM_FILTER, 1), (STATUS_FILTER, 1), (TELEMETRY_FILTER, 0), (rejected_topic(), 1)]
        # on the NATS cluster live telemetry arrives only under its partition (docs/cluster.md)
        client.subscribe([*filters, (PARTITIONED_TELEMETRY_FILTER, 0)])
        log.info("connected to %s:%s, subscribed", self._settings.host, self._settings.port)
        self._deliver(BoardEvent("connection", connected=True))

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self.heartbeat.beat(self._away_s)  # waiting on purpose, then trying again

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.heartbeat.beat(self._away_s)
        self._connected.clear()
        log.warning("lost the broker at %s:%s: %s", self._settings.host, self._settings.port, reason)
        self._deliver(BoardEvent("connection", connected=False, reason=str(reason)))

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        # An exception leaving this callback would end paho's network thread: the board would go
        # on showing what it had, silently. One message is judged alone; whatever it does, the next comes.
        topic = _shown_topic(message)
        try:
            event = self._convert(_topic(message), bytes(message.payload), bool(message.retain))
        except WireFormatError as exc:
            self.rejected += 1
            log.warning("ignored a message on %s: %s (%d ignored so far)", topic, exc, self.rejected)
            return
        except Exception:
            self.rejected += 1
            log.exception("ignored a message on %s: unexpected error (%d ignored so far)", topic, self.rejected)
            return
        self._deliver(event)

    @staticmethod
    def _convert(topic: str, payload: bytes, retained: bool) -> BoardEvent:
        route = parse_topic(topic)
        if route.kind == REJECTED:
            return BoardEvent("rejected", raw=payload)
        crate = route.own_crate
        if crate is not None:
            refuse_reserved_crate(crate)  # the broker lets every login, staff too, write its own crate topics
        if route.kind == TELEMETRY:
            return BoardEvent("telemetry", telemetry=decode_telemetry(payload, crate))
        if route.kind == STATUS:
            return BoardEvent("status", status=decode_status(topic, payload), live=not retained)
        alarm = decode_alarm(topic, payload)  # which refuses any other topic
        return BoardEvent("alarm", key=route.ids, alarm=alarm)
