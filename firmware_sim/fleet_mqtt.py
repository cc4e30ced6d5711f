"""The fleet's paho adapter: many MQTT clients served by one thread through one selector.

A thread per client does not scale to a thousand crates, so the clients run on
paho's external-loop interface (``loop_read``/``loop_write``/``loop_misc``):
callbacks only count, the caller's loop drives the sockets.
"""

from __future__ import annotations

import selectors
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

__all__ = ["Credentials", "MqttPool", "PoolError"]

_MISC_EVERY_S = 1.0  # keepalive and retry housekeeping
_INFLIGHT = 100  # unacknowledged QoS 1 messages per client (one shared client is fastest at about 100)
_READ_PACKETS = 2000  # PUBACKs handled per readable socket per round: a shared client gets thousands a second


class PoolError(RuntimeError):
    """The broker refused or dropped a client: the message says which and why."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """One client identity."""

    username: str
    password: str


class MqttPool:
    """``size`` clients to one broker; publish through any of them, count PUBACKs."""

    def __init__(self, host: str, port: int, client_ids: list[str], credentials: list[Credentials | None]) -> None:
        self.host = host
        self.port = port
        self.acked = 0
        self.last_ack = 0.0  # monotonic time of the latest PUBACK
        self.connected = 0
        self.errors: list[str] = []
        self._selector = selectors.DefaultSelector()
        self._writers: set[mqtt.Client] = set()
        self._last_misc = time.monotonic()
        self.clients = [self._client(cid, cred) for cid, cred in zip(client_ids, credentials, strict=True)]
        self.window = min(_INFLIGHT * len(self.clients), 20_000)  # messages that may await a PUBACK at once

    def _client(self, client_id: str, credentials: Credentials | None) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, userdata=client_id, protocol=MQTTProtocolVersion.MQTTv311
        )
        client.max_inflight_messages_set(_INFLIGHT)
        client.max_queued_messages_set(0)
        if credentials is not None:
            client.username_pw_set(credentials.username, credentials.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_socket_register_write = lambda c, u, s: self._writers.add(c)
        client.on_socket_unregister_write = lambda c, u, s: self._writers.discard(c)
        return client

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.errors.append(f"{userdata}: connection refused: {reason}")
        else:
            self.connected += 1

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.errors.append(f"{userdata}: disconnected: {reason}")

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self.acked += 1
        self.last_ack = time.monotonic()

    def connect(self, timeout_s: float) -> None:
        """Connect every client and wait for every CONNACK."""
        for client in self.clients:
            try:
                client.connect(self.host, self.port, keepalive=60)
            except OSError as exc:
                raise PoolError(f"cannot reach the broker at {self.host}:{self.port}: {exc}") from None
            sock = client.socket()
            assert sock is not None
            self._selector.register(sock, selectors.EVENT_READ, client)
        deadline = time.monotonic() + timeout_s
        while self.connected < len(self.clients) and not self.errors:
            if time.monotonic() > deadline:
                raise PoolError(f"only {self.connected} of {len(self.clients)} clients connected in {timeout_s:g} s")
            self.service(0.05)
        if self.errors:
            raise PoolError(self.errors[0])

    def publish(self, index: int, topic: str, payload: bytes, qos: int) -> None:
        """Publish through client ``index``."""
        self.clients[index].publish(topic, payload, qos=qos)

    def service(self, timeout_s: float) -> None:
        """Move bytes: read what arrived (up to ``timeout_s`` waiting), write what is queued."""
        for key, _ in self._selector.select(timeout_s):
            client: mqtt.Client = key.data
            client.loop_read(max_packets=_READ_PACKETS)
        for client in list(self._writers):
            client.loop_write()
        now = time.monotonic()
        if now - self._last_misc >= _MISC_EVERY_S:
            self._last_misc = now
            for client in self.clients:
                client.loop_misc()

    def close(self) -> None:
        """Disconnect every client cleanly."""
        for client in self.clients:
            client.disconnect()
            client.loop_write()
        self._selector.close()
