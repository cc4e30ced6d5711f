"""The gateway's only contact with paho-mqtt: a durable MQTT v5 session with manual acknowledgement.

The session outlives the gateway (``clean_start=False`` + a session expiry
interval), so what queues while it is down is delivered when it returns. A
message is acknowledged only when the worker says it is stored; until then the
broker keeps it and redelivers it after a reconnect. Receive Maximum tells the
broker how many unacknowledged messages it may send us, which bounds our memory.

Paho's callbacks only convert and enqueue. Each delivery carries the connection
generation it arrived on: an acknowledgement for a message of an earlier
connection is never sent, because the broker redelivers that message (same
packet id) on the new connection, and a stale PUBACK could acknowledge
a different message that reuses the id.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.config import MqttConfig

__all__ = ["Delivery", "MqttLink"]

log = logging.getLogger(__name__)

# (topic, payload, packet id, connection generation)
Delivery = tuple[str, bytes, int, int]

_PUBACK = 0x40


class MqttLink:
    """One durable MQTT v5 session, reconnecting with capped exponential back-off until stopped."""

    def __init__(
        self, config: MqttConfig, deliver: Callable[[Delivery], None], on_subscribed: Callable[[], None]
    ) -> None:
        self.config = config
        self._deliver = deliver
        self._on_subscribed = on_subscribed
        self.generation = 0
        self.connected = threading.Event()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=config.client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
        if config.tls or config.ca_file is not None:
            client.tls_set(ca_certs=str(config.ca_file) if config.ca_file else None)
        if config.username is not None:
            password = config.password_file.read_text().strip() if config.password_file else None
            client.username_pw_set(config.username, password)
        client.reconnect_delay_set(max(1, round(config.reconnect_min_s)), max(1, round(config.reconnect_max_s)))
        # our alarms, rejects and storage acks: enough in flight that publishing never waits on the broker
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.on_socket_open = self._on_socket_open
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client

    # --- paho callbacks: convert and hand off only ------------------------------------------

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        # an alarm must leave at once, not wait ~40 ms for Nagle to coalesce it with the next write
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("broker %s:%d refused the connection: %s", self.config.host, self.config.port, reason)
            return
        self.generation += 1
        log.info("connected to %s:%d (session present: %s)", self.config.host, self.config.port, flags.session_present)
        self.connected.set()
        # subscribing again on a present session is harmless and covers a broker that lost it
        client.subscribe(self.config.telemetry_filter, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            log.error("broker refused the subscription to %s: %s", self.config.telemetry_filter, failed[0])
            return
        self._on_subscribed()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected.clear()
        log.warning("lost broker %s:%d (%s); reconnecting", self.config.host, self.config.port, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._deliver((message.topic, bytes(message.payload), message.mid, self.generation))

    # --- used by the worker -------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (paho's network thread); deliveries follow the SUBACK."""
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.config.session_expiry_s
        properties.ReceiveMaximum = self.config.receive_maximum
        self._client.connect_async(
            self.config.host,
            self.config.port,
            self.config.keepalive_s,
            clean_start=False,
            properties=properties,
        )
        self._client.loop_start()

    def ack(self, deliveries: Iterable[Delivery]) -> int:
        """Acknowledge stored messages of the current connection; return how many acks were sent."""
        generation = self.generation
        mids = [d[2] for d in deliveries if d[3] == generation]
        if not mids:
            return 0
        # one write for the whole batch: paho's ack() queues (and wakes its loop for) one packet per mid
        packet = b"".join(bytes((_PUBACK, 2, mid >> 8, mid & 0xFF)) for mid in mids)
        self._client._packet_queue(_PUBACK, packet, 0, 0)
        return len(mids)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        """Hand a QoS 1 message to paho; False when not connected (paho sends it after reconnecting)."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def stop(self) -> None:
        """Disconnect (the session stays on the broker) and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()
