"""The gateway's fast MQTT reader leans on paho's private internals: they are checked by name, and the fast
reader must deliver and acknowledge exactly what plain paho does on the same traffic from a real broker.

``gateway/mqtt_link.py``'s ``_IngestClient`` overrides ``_sock_recv`` and ``_handle_publish``, queues PUBACKs
with ``_packet_queue`` and reads ``_in_packet`` and ``_sock``. pyproject.toml pins paho-mqtt to the releases
this file was run against; a new paho release must pass it before the pin moves.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from wait_helpers import wait_until

from cli.services import Mosquitto
from gateway.config import MqttConfig
from gateway.mqtt_link import Deliveries, MqttLink

# the private methods _IngestClient overrides or calls, with the parameters it relies on (in order)
_METHODS = {
    "_sock_recv": ["self", "bufsize"],
    "_handle_publish": ["self"],
    "_packet_queue": ["self", "command", "packet", "mid", "qos"],
}
_MESSAGES = 300
# topic and payload sizes: empty, tiny, typical, beyond one TCP segment, and beyond the fast reader's 256 KiB chunk
_PAYLOAD_SIZES = (0, 1, 2, 127, 128, 1000, 16_383, 16_384, 70_000)
_BIG_PAYLOAD = 300_000


def _paho_client(client_id: str) -> mqtt.Client:
    return mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)


@pytest.mark.parametrize("name", sorted(_METHODS))
def test_overridden_private_methods_keep_their_signature(name: str) -> None:
    """paho's Client still has each private method _IngestClient overrides or calls, with the same parameters."""
    method = getattr(mqtt.Client, name, None)
    assert callable(method), f"paho.mqtt.client.Client.{name} is gone: gateway/mqtt_link.py's _IngestClient needs it"
    params = list(inspect.signature(method).parameters)
    expected = _METHODS[name]
    assert params[: len(expected)] == expected, (
        f"paho.mqtt.client.Client.{name}{inspect.signature(method)} changed: gateway/mqtt_link.py's _IngestClient "
        f"relies on parameters {expected}"
    )


def test_read_private_attributes_keep_their_shape() -> None:
    """A paho client still keeps its socket in _sock and the packet being read in _in_packet (command, packet)."""
    client = _paho_client("internals-probe")
    assert hasattr(client, "_sock"), "paho.mqtt.client.Client._sock is gone: _IngestClient reads the socket there"
    in_packet = getattr(client, "_in_packet", None)
    assert isinstance(in_packet, dict), "paho.mqtt.client.Client._in_packet is no longer a dict: _IngestClient reads it"
    missing = {"command", "packet"} - in_packet.keys()
    assert not missing, f"paho.mqtt.client.Client._in_packet lacks {sorted(missing)}: _IngestClient reads them"


def _traffic(prefix: str) -> list[tuple[str, bytes]]:
    """Telemetry and events of crates with names of 1 to ~300 characters, payloads of 0 bytes to 300 kB."""
    out = []
    for i in range(_MESSAGES):
        crate = f"{prefix}-{'x' * (i * 7 % 300)}"
        kind = "events" if i % 5 == 0 else "telemetry"
        size = _BIG_PAYLOAD if i in (50, 51) else _PAYLOAD_SIZES[i % len(_PAYLOAD_SIZES)]
        payload = (f"{i:05d}".encode() * (size // 5 + 1))[:size]
        out.append((f"coldchain/v1/crates/{crate}/{kind}", payload))
    return out


def _properties(i: int) -> Properties:
    """MQTT 5 properties the broker forwards, of varied length, so the fast decoder has some to skip."""
    props = Properties(PacketTypes.PUBLISH)
    props.PayloadFormatIndicator = 0
    props.MessageExpiryInterval = 600
    props.ContentType = "application/json"
    props.ResponseTopic = f"coldchain/v1/reply/{i}"
    props.CorrelationData = bytes(i % 200)
    props.UserProperty = [("seq", str(i)), ("pad", "p" * (i % 150))]
    return props


def _publish(mosquitto: Mosquitto, client_id: str, messages: list[tuple[str, bytes]]) -> None:
    publisher = _paho_client(client_id)
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    try:
        infos = [publisher.publish(t, p, qos=1, properties=_properties(i)) for i, (t, p) in enumerate(messages)]
        for info in infos:
            info.wait_for_publish(5)
            assert info.is_published(), "the broker did not take a test message"
    finally:
        publisher.disconnect()
        publisher.loop_stop()


class _PlainSession:
    """Plain paho on a durable MQTT 5 session with the gateway's subscriptions, acknowledging each message."""

    def __init__(self, mosquitto: Mosquitto, config: MqttConfig, prefix: str) -> None:
        """Connect and subscribe; received messages of ``prefix``'s crates are kept in order."""
        self.received: list[tuple[str, bytes]] = []
        self.properties: list[Properties] = []
        self.subscribed = threading.Event()
        self._prefix = f"coldchain/v1/crates/{prefix}-"
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *args: self.subscribed.set()
        client.on_message = self._on_message
        self._client = client
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = config.session_expiry_s
        props.ReceiveMaximum = config.receive_maximum
        client.connect(mosquitto.host, mosquitto.port, clean_start=False, properties=props)
        client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        # the gateway's options: QoS 1, retained messages only on a new subscription
        client.subscribe([(f, SubscribeOptions(qos=1, retainHandling=1)) for f in MqttConfig().filters])

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.topic.startswith(self._prefix):  # the session broker may hold other tests' retained status
            self.received.append((message.topic, message.payload))
            self.properties.append(message.properties)
        client.ack(message.mid, message.qos)

    def close(self) -> None:
        """Disconnect; the session stays on the broker."""
        self._client.disconnect()
        self._client.loop_stop()


class _FastSession:
    """The gateway's MqttLink, acknowledging each read's messages as soon as it is handed over."""

    def __init__(self, config: MqttConfig, prefix: str) -> None:
        """Start the link; received messages of ``prefix``'s crates are kept in order."""
        self.received: list[tuple[str, bytes]] = []
        self.subscribed = threading.Event()
        self._prefix = f"coldchain/v1/crates/{prefix}-"
        self.link = MqttLink(config, self.subscribed.set)
        self.link.start(self)

    def read_budget(self) -> int:
        """Unbounded: the test reads what the broker sends."""
        return 1 << 30

    def deliver(self, deliveries: Deliveries) -> None:
        """Keep the messages of our crates; acknowledge everything at once."""
        self.received.extend((d[0], d[1]) for d in deliveries if d[0].startswith(self._prefix))
        self.link.ack(deliveries)

    def close(self) -> None:
        """Stop the link; the session stays on the broker."""
        self.link.stop()
        assert not self.link.failed.is_set(), "the fast link's network thread failed"


def _sessions(mosquitto: Mosquitto, prefix: str) -> tuple[_FastSession, _PlainSession]:
    fast = _FastSession(
        MqttConfig(host=mosquitto.host, port=mosquitto.port, client_id=f"{prefix}-fast", session_expiry_s=60), prefix
    )
    plain = _PlainSession(mosquitto, MqttConfig(client_id=f"{prefix}-plain", session_expiry_s=60), prefix)
    wait_until(lambda: fast.subscribed.is_set() and plain.subscribed.is_set(), 10, "both sessions subscribed")
    return fast, plain


def _both_have(fast: _FastSession, plain: _PlainSession, count: int) -> Callable[[], bool]:
    return lambda: len(fast.received) >= count and len(plain.received) >= count


@pytest.mark.integration
def test_fast_reader_delivers_and_acknowledges_what_plain_paho_does(mosquitto: Mosquitto, crate_prefix: str) -> None:
    """300 QoS 1 messages with MQTT 5 properties arrive identically, in order, at both; none is redelivered after."""
    prefix = f"{crate_prefix}-PI"
    messages = _traffic(prefix)
    fast, plain = _sessions(mosquitto, prefix)
    try:
        _publish(mosquitto, f"{prefix}-pub", messages)
        wait_until(_both_have(fast, plain, len(messages)), 10, f"{len(messages)} messages at both readers")
    finally:
        fast.close()
        plain.close()
    assert plain.received == messages
    assert fast.received == plain.received
    assert all(("seq", str(i)) in p.UserProperty for i, p in enumerate(plain.properties)), "properties were sent"

    # every message was acknowledged: the durable sessions, back again, get only a new message, nothing redelivered
    fast, plain = _sessions(mosquitto, prefix)
    try:
        sentinel = [(f"coldchain/v1/crates/{prefix}-after/telemetry", b"after")]
        _publish(mosquitto, f"{prefix}-pub", sentinel)
        wait_until(_both_have(fast, plain, 1), 10, "the message after the reconnect at both readers")
    finally:
        fast.close()
        plain.close()
    assert fast.received == sentinel, "the fast reader's session had unacknowledged messages"
    assert plain.received == sentinel, "plain paho's session had unacknowledged messages"
