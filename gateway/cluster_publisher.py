"""What the gateway sends crates and staff on the NATS cluster: MQTT 3.1.1, QoS 1, retained where the contract says.

On nats-server a message published over NATS reaches MQTT subscribers at QoS 0
and is never retained; storage acks and alarms are retained QoS 1 messages in
the wire contract, so the JetStream gateway publishes them over MQTT, to any node
of the cluster, moving to the next node when its node is lost. paho keeps what
is not yet PUBACKed and sends it again on the next connection.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
from typing import Any

import paho.mqtt.client as mqtt

from adapters.mqtt_client import broker_client
from coldchain.settings.broker import BrokerSettings

__all__ = ["ClusterPublisher"]

log = logging.getLogger(__name__)


class ClusterPublisher:
    """One MQTT 3.1.1 connection to one of ``brokers`` at a time, for QoS 1 publishing only."""

    def __init__(self, settings: BrokerSettings, client_id: str) -> None:
        """``settings``: the cluster nodes' MQTT listeners as ``brokers``, MQTT 3.1.1, the gateway's login."""
        self.brokers = settings.addresses
        self.keepalive_s = settings.keepalive_s
        self.connected = threading.Event()
        self._next = random.randrange(len(self.brokers))  # noqa: S311 (load spreading, not cryptography)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mqtt-out", daemon=True)
        client = broker_client(settings, client_id, mqtt.Client)
        # alarms, storage acks and rejects: enough in flight that publishing never waits on the broker
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        # publish() from the worker's threads only queues and wakes our loop, the one writer
        client.on_socket_register_write = lambda client, userdata, sock: None
        self._client = client

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("cluster node refused the gateway's MQTT connection: %s", reason)
            return
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected.clear()

    def start(self) -> None:
        """Connect in the background."""
        self._thread.start()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        """Queue a QoS 1 message; False when not connected (it is sent once connected again)."""
        return self._client.publish(topic, payload, qos=1, retain=retain).rc == mqtt.MQTT_ERR_SUCCESS

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued (briefly), disconnect and stop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.is_set():
            host, port = self.brokers[self._next]
            self._next = (self._next + 1) % len(self.brokers)
            try:
                self._client.connect(host, port, self.keepalive_s)
            except (OSError, ssl.SSLError) as exc:
                log.warning("cannot reach cluster node %s:%d over MQTT (%s)", host, port, exc)
            else:
                log.info("publishing to cluster node %s:%d over MQTT", host, port)
                while not self._stop.is_set() and self._client.loop(timeout=0.1) == mqtt.MQTT_ERR_SUCCESS:
                    delay = 0.0
                if self._stop.is_set():
                    break
                log.warning("lost cluster node %s:%d (MQTT); trying the next", host, port)
            self.connected.clear()
            delay = min(5.0, max(0.1, delay * 2))
            self._stop.wait(delay * random.uniform(0.5, 1.0))  # noqa: S311 (jitter)
        if self.connected.is_set():
            for _ in range(10):  # let queued PUBLISHes leave before the DISCONNECT
                if self._client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                    break
            self._client.disconnect()
            self._client.loop(timeout=0.05)
        self.connected.clear()
