"""The agent's only contact with paho-mqtt: MQTT v5 (or 3.1.1), TLS, credentials, reconnect.

Paho's callbacks convert what happened into ``edge.events`` values and hand them
to the agent loop, nothing more. The network loop is ours (not paho's
``loop_start``) so reconnects back off exponentially with jitter: after a broker
restart a fleet of crates must not reconnect in lock-step. With ``[mqtt] brokers``
(the nodes of a cluster) each failed or lost connection moves on to the next node.

MQTT 3.1.1 (``protocol = "3.1.1"``, for nats-server) keeps the same session
semantics: a clean session (v5: clean start, session expiry 0), the same will.
What it lacks is a refusal reason in PUBACK: a publish the broker drops (e.g. no
right to the topic) looks delivered, and the spool sends it again after
``[spool] ack_timeout_s`` without a storage ack, as after any loss.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from adapters.mqtt_client import broker_client
from coldchain.errors import WireFormatError
from coldchain.topics import parse_topic, status_topic, storage_ack_topic
from coldchain.wire import CrateStatus, decode_storage_ack, encode
from edge.config import MqttConfig
from edge.events import Connected, Disconnected, Event, Published, StorageAcked

__all__ = ["Backoff", "MqttLink"]

log = logging.getLogger(__name__)


class Backoff:
    """Capped exponential back-off with jitter: each wait lies in the upper half of a doubling ceiling."""

    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.ceiling = 0.0

    def next(self) -> float:
        """The next wait in seconds."""
        self.ceiling = min(self.maximum, max(self.minimum, self.ceiling * 2))
        return random.uniform(self.ceiling / 2, self.ceiling)  # noqa: S311 (jitter, not cryptography)

    def reset(self) -> None:
        """Start again from the minimum (after a successful connection)."""
        self.ceiling = 0.0


class MqttLink:
    """One MQTT v5 session for one crate, reconnecting until stopped."""

    def __init__(self, config: MqttConfig, crate: str, emit: Callable[[Event], None], wall_ms: Callable[[], int]):
        self.config = config
        self.crate = crate
        self.emit = emit
        self.wall_ms = wall_ms
        self.bad_acks = 0
        self._addresses = config.addresses
        # the broker the next attempt goes to; a fleet starts spread over a cluster's nodes
        self._next = random.randrange(len(self._addresses))  # noqa: S311 (load spreading, not cryptography)
        host, port = self._addresses[self._next]
        self.broker = f"{host}:{port}"  # the broker of the current (or last) attempt
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        client = broker_client(config, config.client_id, mqtt.Client)
        # our own window keeps paho's RAM queue short; the spool holds the rest
        client.max_inflight_messages_set(config.window)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._resubscribe_at: float | None = None  # monotonic time to subscribe to acks again after a refusal
        # Without a paho loop thread of its own, publish() writes to the socket from the calling
        # (agent) thread while our network thread writes too: both pop paho's packet queue, so
        # telemetry left out of seq order (seen: seq 298 before 297). A write hook, even one that
        # does nothing, makes publish() only queue the packet and wake loop(), the one writer.
        client.on_socket_register_write = lambda client, userdata, sock: None
        self._client = client
        self._connected = False

    # --- paho callbacks: convert and enqueue only -------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("broker %s refused the connection: %s", self.broker, reason)
            return
        if self._connected:  # paho may report a connect twice; the loop must hear it once
            return
        self._resubscribe_at = None  # the agent subscribes afresh on every connection
        self._connected = True
        self.emit(Connected())

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if self._connected:
            self._connected = False
            self.emit(Disconnected(str(reason)))

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self.emit(Published(mid, int(reason.value), str(reason)))

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            # Without the subscription no storage ack arrives, the spool never shrinks and everything is sent
            # again and again. nats-server refuses a QoS 1 subscription when it cannot create its JetStream
            # consumer (seen for 4 s and more while its cluster recovers from a lost node).
            retry = self.config.refused_retry_s
            log.error("broker %s refused the ack subscription (%s); again in %.1f s", self.broker, failed[0], retry)
            self._resubscribe_at = time.monotonic() + retry

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        # An exception leaving this callback would end our network loop: no more publishing, no
        # reconnecting. One bad ack is counted and logged; the next one may be good.
        shown = bytes(message._topic).decode("utf-8", "replace")[:200]
        try:
            ack = decode_storage_ack(bytes(message.payload), parse_topic(message.topic).own_crate)
        except WireFormatError as exc:
            self.bad_acks += 1
            log.warning("ignored bad storage ack #%d on %s: %s", self.bad_acks, shown, exc)
            return
        except Exception:
            self.bad_acks += 1
            log.exception("ignored bad storage ack #%d on %s: unexpected error", self.bad_acks, shown)
            return
        self.emit(StorageAcked(ack.stored_through))

    # --- used by the agent loop ---------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; Connected / Disconnected events follow."""
        self._thread.start()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int | None:
        """Hand a QoS 1 message to paho; its mid, or None when not connected."""
        if not self._connected:
            return None
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        return int(info.mid)

    def subscribe_acks(self) -> None:
        """Listen for the gateway's storage acknowledgements of this crate."""
        self._client.subscribe(storage_ack_topic(self.crate), qos=1)

    def stop(self, timeout: float = 2.0) -> None:
        """Disconnect cleanly (the last will is not sent) and stop the network loop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def connected(self) -> bool:
        """True between the broker's CONNACK and the loss of the connection."""
        return self._connected

    # --- network loop -------------------------------------------------------------------------

    def _will(self) -> None:
        offline = encode(CrateStatus(self.crate, "offline", self.wall_ms()))
        self._client.will_set(status_topic(self.crate), offline, qos=1, retain=True)

    def _connect(self) -> None:
        """Connect to the next broker of the list (the only one without ``brokers``)."""
        host, port = self._addresses[self._next]
        self._next = (self._next + 1) % len(self._addresses)
        self.broker = f"{host}:{port}"
        if self.config.protocol == "3.1.1":
            self._client.connect(host, port, self.config.keepalive_s)
            return
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 0
        self._client.connect(host, port, self.config.keepalive_s, clean_start=True, properties=properties)

    def _run(self) -> None:
        config = self.config
        backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s)
        while not self._stop.is_set():
            self._will()
            try:
                self._connect()
            except (OSError, ssl.SSLError) as exc:
                delay = backoff.next()
                log.warning("cannot reach broker %s (%s); retrying in %.1f s", self.broker, exc, delay)
                self._stop.wait(delay)
                continue
            rc = mqtt.MQTT_ERR_SUCCESS
            while not self._stop.is_set():
                rc = self._client.loop(timeout=0.1)
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    break
                if self._connected:
                    backoff.reset()
                    if self._resubscribe_at is not None and time.monotonic() >= self._resubscribe_at:
                        self._resubscribe_at = None
                        self.subscribe_acks()
            if self._stop.is_set():
                self._close()
                return
            reason = mqtt.error_string(rc)
            self._on_disconnect(self._client, None, None, reason, None)
            delay = backoff.next()
            log.warning("lost broker %s (%s); reconnecting in %.1f s", self.broker, reason, delay)
            self._stop.wait(delay)

    def _close(self) -> None:
        if self._connected:
            self._client.disconnect()
            for _ in range(10):
                if self._client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                    break
        self._connected = False
