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

Speed (docs/gateway.md, "Throughput"): paho reads each packet with three
``recv`` calls and one ``select``, and builds a ``Properties`` object per
message; at tens of thousands of messages a second that is most of a core.
``_IngestClient`` keeps paho's protocol engine but reads the socket in large
chunks, parses incoming PUBLISH packets itself (topic, packet id, payload), and
sends a batch's PUBACKs as one write. The network loop is ours, so it can
drain what is buffered without waiting for the socket to become readable.
These are paho internals: pyproject.toml pins paho-mqtt to the releases on which
tests/test_gateway_paho_internals.py passed, which names any of them that changed.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from adapters.liveness import Heartbeat
from adapters.mqtt_client import broker_client
from gateway.config import MqttConfig

__all__ = ["Deliveries", "Delivery", "MqttLink", "Reader"]

log = logging.getLogger(__name__)

# (topic, payload, packet id, connection generation)
Delivery = tuple[str, bytes, int, int]
# what one network read brought, handed to the worker in one call on the network thread
Deliveries = list[Delivery]

_PUBACK = 0x40
_READ_CHUNK = 256 * 1024
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only
_DRAIN_PACKETS = 64  # packets taken from the buffer before they are judged and writes looked at
_PAUSE_S = 0.002  # how often a paused reader looks again
# at live rates messages come one per read: a short pause after a small read lets the next few arrive
# and be read together (one select and recv for several: 24-26 % CPU at 10,000/s instead of 29-32 %); what was read
# is judged, and an alarm sent, before the pause
_FEW = 8
_GATHER_S = 0.001
_SELECT_S = 0.5  # the longest the network loop waits for the socket in one pass


class _IngestClient(mqtt.Client):
    """paho's client with a read buffer, a lean PUBLISH decoder and batched PUBACKs (see the module doc)."""

    def __init__(self, deliver: Callable[[str, bytes, int], None], **paho: Any) -> None:
        """``paho``: the constructor arguments ``adapters.mqtt_client.broker_client`` chooses."""
        super().__init__(**paho)
        self._fast_deliver = deliver
        self._rbuf = b""
        self._rpos = 0
        # PUBLISH packets we may still take in this pass: paho's loop_read reads as many packets as we have
        # messages in flight (hundreds), so only a stop inside the read bounds what one pass brings
        self.read_budget = 1 << 30

    def allow(self, packets: int) -> None:
        """Take in at most ``packets`` more PUBLISH packets until the next call."""
        self.read_budget = packets

    def reset_buffer(self) -> None:
        """Forget unread bytes of a previous connection."""
        self._rbuf, self._rpos = b"", 0

    @property
    def buffered(self) -> bool:
        """True while received bytes wait in our buffer (select() would not see them)."""
        return self._rpos < len(self._rbuf)

    def _sock_recv(self, bufsize: int) -> bytes:
        if self.read_budget <= 0:
            raise BlockingIOError  # paho keeps a partly read packet and goes on with it next time
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            buf = super()._sock_recv(_READ_CHUNK)  # raises BlockingIOError when nothing is there
            if not buf:
                return buf
            sock = self._sock  # a TCP or TLS socket (paho's websocket wrapper is never used here)
            if _QUICKACK is not None and isinstance(sock, socket.socket):
                # we PUBACK only after the write, so no reply carries our TCP ACK: without this the
                # kernel delays it, and a broker without TCP_NODELAY holds the next message (an alarm's
                # reading too) until it comes. Linux resets quick-ack mode, hence after every read.
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            pos = 0
            self._rbuf = buf
        out = buf[pos : pos + bufsize]
        self._rpos = pos + len(out)
        return out

    def _handle_publish(self) -> MQTTErrorCode:
        packet = self._in_packet["packet"]
        qos = (self._in_packet["command"] & 0x06) >> 1
        if qos == 2:  # never granted by our subscription; let paho run the full QoS 2 flow
            return super()._handle_publish()
        try:
            # no topic aliases: we announce no Topic Alias Maximum, so the broker always sends the topic
            end = 2 + ((packet[0] << 8) | packet[1])
            topic = packet[2:end].decode("utf-8", "replace")
            mid = 0
            if qos:
                mid = (packet[end] << 8) | packet[end + 1]
                end += 2
            length, shift = 0, 0
            while True:  # MQTT 5 properties: a variable-length size, then the properties we do not need
                byte = packet[end]
                end += 1
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
        except IndexError:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL  # a truncated packet: paho drops the connection
        self.read_budget -= 1
        self._fast_deliver(topic, bytes(packet[end + length :]), mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: list[int]) -> None:
        """Queue the PUBACKs of ``mids`` as one write (reason code 0 and no properties may be omitted)."""
        packet = b"".join(bytes((_PUBACK, 2, mid >> 8, mid & 0xFF)) for mid in mids)
        self._packet_queue(_PUBACK, packet, 0, 0)


class Reader(Protocol):
    """What the link hands its reads to (``gateway.worker.Worker``)."""

    def deliver(self, deliveries: Deliveries) -> None:
        """Judge and batch what one read brought."""

    def read_budget(self) -> int:
        """How many more messages may be read now."""


class MqttLink:
    """One durable MQTT v5 session, reconnecting with capped exponential back-off until stopped."""

    def __init__(self, config: MqttConfig, on_subscribed: Callable[[], None]) -> None:
        """``on_subscribed``: called (on the network thread) after each accepted subscription."""
        self.config = config
        self._on_subscribed = on_subscribed
        self.generation = 0
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread()  # the network thread, made by start()
        self.failed = threading.Event()  # the network thread died of an unexpected error
        self._received: Deliveries = []
        client = broker_client(
            config, config.client_id, _IngestClient, manual_ack=True, deliver=self._on_publish_received
        )
        # our alarms, rejects and storage acks: enough in flight that publishing never waits on the broker
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        # paho takes its callbacks only as attributes of a made client
        client.on_socket_open = self._on_socket_open
        # an external loop: paho never writes on its own; publish() from another thread queues and wakes our select()
        client.on_socket_register_write = self._on_register_write
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        self._client = client
        # what the systemd watchdog vouches for: every pass of the network loop, or its reconnect wait
        self.heartbeat = Heartbeat("the MQTT network thread", self._connect_allowance_s)

    # --- paho callbacks: convert and hand off only ------------------------------------------

    def _on_publish_received(self, topic: str, payload: bytes, mid: int) -> None:
        self._received.append((topic, payload, mid, self.generation))

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._client.reset_buffer()
        # an alarm must leave at once, not wait ~40 ms for Nagle to coalesce it with the next write
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        pass  # our loop selects for writing whenever paho wants to write

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("broker %s:%d refused the connection: %s", self.config.host, self.config.port, reason)
            return
        self.generation += 1
        log.info("connected to %s:%d (session present: %s)", self.config.host, self.config.port, flags.session_present)
        self.connected.set()
        # subscribing again on a present session is harmless and covers a broker that lost it; retained
        # crate status only when the subscription is new (a present session has seen it already), and
        # never to a shared group (MQTT 5 sends none there; Mosquitto would give every member all of them)
        options = SubscribeOptions(qos=1, retainHandling=2 if self.config.shared_group else 1)
        client.subscribe([(topic_filter, options) for topic_filter in self.config.filters])

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            log.error("broker refused a subscription of %s: %s", self.config.filters, failed[0])
            return
        self._on_subscribed()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("lost broker %s:%d (%s)", self.config.host, self.config.port, reason)

    # --- used by the worker -------------------------------------------------------------------

    def start(self, reader: Reader) -> None:
        """Connect in the background; what each read brings goes to ``reader.deliver`` (on the network thread).

        ``reader.read_budget()``: how many more messages may be taken in now (asked before each read).
        """
        args = (reader.deliver, reader.read_budget)
        self._thread = threading.Thread(target=self._guarded_run, args=args, name="mqtt", daemon=True)
        self._thread.start()

    def ack(self, deliveries: Iterable[Delivery]) -> int:
        """Acknowledge stored messages of the current connection; return how many acks were sent."""
        generation = self.generation
        # packet id 0: a message some crate sent at QoS 0, delivered so; a PUBACK for it is a protocol
        # error to the broker, which would drop us (and redeliver the whole window)
        mids = [d[2] for d in deliveries if d[3] == generation and d[2]]
        if mids and self.connected.is_set():
            self._client.ack_many(mids)
            return len(mids)
        return 0

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        """Hand a QoS 1 message to paho; False when not connected (paho sends it after reconnecting)."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if threading.current_thread() is self._thread and self.connected.is_set():
            # judged from the read being handled: send it now, not after the read's remaining messages
            self._client.loop_write()
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect (the session stays on the broker) and stop the network thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # --- network loop -------------------------------------------------------------------------

    @property
    def _connect_allowance_s(self) -> float:
        """The longest a connection attempt may take: paho's connect timeout, twice (TCP, then TLS)."""
        return 2 * self._client.connect_timeout

    def _connect(self) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.config.session_expiry_s
        properties.ReceiveMaximum = self.config.receive_maximum
        self._client.connect(
            self.config.host, self.config.port, self.config.keepalive_s, clean_start=False, properties=properties
        )

    def _serve(self, deliver: Callable[[Deliveries], None], read_budget: Callable[[], int]) -> None:
        """Pump the connection until it fails or we stop; each read's messages go to the worker at once."""
        client = self._client
        while not self._stop.is_set():
            self.heartbeat.beat(_SELECT_S)
            client.allow(read_budget())
            if client.read_budget <= 0:
                # mosquitto 2.0.11 may send far more than Receive Maximum once we acknowledge
                # (eclipse/mosquitto#2301): the excess waits in its queue and our socket buffer, not in
                # our memory, while PUBACKs and pings still go out
                rc = client.loop_write() if client.want_write() else mqtt.MQTT_ERR_SUCCESS
                if rc == mqtt.MQTT_ERR_SUCCESS:
                    rc = client.loop_misc()
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    return
                self._stop.wait(_PAUSE_S)
                continue
            if client.buffered:
                for _ in range(_DRAIN_PACKETS):
                    rc = client.loop_read()
                    if rc != mqtt.MQTT_ERR_SUCCESS or not client.buffered:
                        break
                if rc == mqtt.MQTT_ERR_SUCCESS and client.want_write():
                    rc = client.loop_write()
                if rc == mqtt.MQTT_ERR_SUCCESS:
                    rc = client.loop_misc()
            else:
                # publish() and ack() from other threads wake this select through paho's socket pair
                rc = client.loop(timeout=_SELECT_S)
            if self._received:
                received, self._received = self._received, []
                deliver(received)
                if len(received) < _FEW and not client.buffered and rc == mqtt.MQTT_ERR_SUCCESS:
                    time.sleep(_GATHER_S)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                return

    def _guarded_run(self, deliver: Callable[[Deliveries], None], read_budget: Callable[[], int]) -> None:
        try:
            self._run(deliver, read_budget)
        except Exception:
            # a silent dead network thread would look like an idle fleet: make it loud instead
            log.exception("the MQTT network thread failed; stopping the gateway")
            self.failed.set()

    def _run(self, deliver: Callable[[Deliveries], None], read_budget: Callable[[], int]) -> None:
        config = self.config
        delay = 0.0
        while not self._stop.is_set():
            generation = self.generation
            self.heartbeat.beat(self._connect_allowance_s)
            try:
                self._connect()
            except OSError as exc:
                log.warning("cannot reach broker %s:%d (%s)", config.host, config.port, exc)
            else:
                self._serve(deliver, read_budget)
            if self._stop.is_set():
                break
            self.connected.clear()
            if self.generation != generation:
                delay = 0.0  # we were connected: the first retry is quick
            delay = min(config.reconnect_max_s, max(config.reconnect_min_s, delay * 2))
            # jitter, so a fleet of gateways does not reconnect in lock-step after a broker restart
            wait = delay * random.uniform(0.5, 1.0)  # noqa: S311 (not cryptography)
            self.heartbeat.beat(wait)  # idle on purpose
            self._stop.wait(wait)
        self._close()

    def _close(self) -> None:
        if self.connected.is_set():
            self._client.disconnect()
            for _ in range(20):  # let the DISCONNECT (and queued PUBACKs) reach the broker
                if self._client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                    break
        self.connected.clear()
