"""The gateway's link to the NATS cluster: a durable JetStream pull consumer in, MQTT 3.1.1 out.

The worker sees the same link as on mosquitto (``gateway.worker.Link``): each
message fetched from the replicated stream becomes a ``Delivery`` (its MQTT topic,
payload, a local id in place of the packet id) handed to the worker on the
consumer's thread, and ``ack`` acknowledges to JetStream only what the worker
stored (written to InfluxDB, state saved). What is not acknowledged JetStream
sends again after the consumer's ack wait, to this gateway or to whichever
takes the durable consumer over. The consumer is durable: a restarted gateway
continues where the stored ones end. ``read_budget`` bounds what is fetched but
not yet acknowledged, as Receive Maximum does on mosquitto.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from adapters.liveness import Heartbeat
from coldchain.settings.broker import BrokerSettings
from gateway.cluster_publisher import ClusterPublisher
from gateway.jetstream_stream import STREAM, connect, ensure_stream, topic_of
from gateway.mqtt_link import Deliveries, Delivery

__all__ = ["ClusterSettings", "JetStreamLink"]

log = logging.getLogger(__name__)

_FETCH_WAIT_S = 0.5  # a fetch that finds nothing returns after this: how often stop is noticed
_RETRY_S = 1.0  # set-up steps (stream, consumer) failing while the cluster elects a leader
# one pass of the consumer loop (a fetch of at most _FETCH_WAIT_S, handing it to the worker), or of a set-up step
# (JetStream API requests time out after 5 s); longer is a wedged consumer for the systemd watchdog
_PASS_S = 15.0


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """Where the cluster is and how the gateway consumes from it."""

    servers: tuple[str, ...]  # NATS URLs of the nodes
    brokers: tuple[tuple[str, int], ...]  # their MQTT listeners (host, port), for what crates and staff receive
    durable: str = "coldchain-gateway"
    username: str | None = None
    password: str | None = None
    password_file: Path | None = None  # where password came from (the MQTT publisher reads it there)
    ca_file: Path | None = None
    ack_wait_s: float = 60.0  # longer than the slowest write the gateway still retries calmly
    batch: int = 500  # messages per fetch at most
    replicas: int = 3


class JetStreamLink:
    """Consumes the telemetry stream for the worker and publishes its acks and alarms over MQTT."""

    def __init__(
        self, settings: ClusterSettings, on_subscribed: Callable[[], None], client_id: str = "coldchain-gateway"
    ) -> None:
        """``on_subscribed``: called (on the consumer thread) once the durable consumer is bound."""
        self.settings = settings
        self._on_subscribed = on_subscribed
        self._deliver: Callable[[Deliveries], None] = lambda deliveries: None  # given by start()
        self._read_budget: Callable[[], int] = lambda: 1 << 30
        self.connected = threading.Event()  # the NATS connection is up and the consumer bound
        self.failed = threading.Event()  # the consumer thread died of an unexpected error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guarded_run, name="jetstream", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count(1)  # 0 would read as "delivered at QoS 0, nothing to acknowledge"
        self._fetched: dict[int, Msg] = {}  # local id -> message awaiting the worker's ack
        # what the systemd watchdog vouches for: every pass of the consumer loop (adapters.liveness)
        self.heartbeat = Heartbeat("the JetStream consumer thread", _PASS_S)
        mqtt = BrokerSettings(
            brokers=settings.brokers,
            protocol="3.1.1",  # nats-server speaks no MQTT 5
            username=settings.username,
            password_file=settings.password_file,
            ca_file=settings.ca_file,
        )
        self.publisher = ClusterPublisher(mqtt, f"{client_id}-out")

    # --- used by the worker -------------------------------------------------------------------

    def start(self, deliver: Callable[[Deliveries], None], read_budget: Callable[[], int] = lambda: 1 << 30) -> None:
        """Connect in the background; what each fetch brings goes to ``deliver`` (on the consumer thread).

        ``read_budget``: how many more messages may be fetched now (asked before each fetch).
        """
        self._deliver = deliver
        self._read_budget = read_budget
        self.publisher.start()
        self._thread.start()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        """Publish at QoS 1 over MQTT (crates and staff receive it as the contract says)."""
        return self.publisher.publish(topic, payload, retain)

    def ack(self, deliveries: Iterable[Delivery]) -> int:
        """Acknowledge stored deliveries to JetStream; how many acks were sent."""
        messages = [m for m in (self._fetched.pop(d[2], None) for d in deliveries) if m is not None]
        loop = self._loop
        if not messages or loop is None or not loop.is_running():
            return 0
        log.debug("acknowledging %d messages to JetStream", len(messages))
        try:
            asyncio.run_coroutine_threadsafe(self._ack(messages), loop).result(timeout=10)
        except (NatsError, TimeoutError, OSError) as exc:
            # not acknowledged: JetStream sends them again after ack_wait, and the ingest drops the duplicates
            log.warning("could not acknowledge %d messages to JetStream (%s); they will come again", len(messages), exc)
            return 0
        return len(messages)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop fetching, close the NATS connection and the MQTT publisher."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.publisher.stop()

    # --- the consumer thread --------------------------------------------------------------------

    async def _ack(self, messages: list[Msg]) -> None:
        for message in messages:
            await message.ack()
        await messages[0]._client.flush(timeout=5)

    def _guarded_run(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception:
            log.exception("the JetStream consumer thread failed; stopping the gateway")
            self.failed.set()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        s = self.settings
        nc = await connect(
            list(s.servers),
            s.username,
            s.password,
            s.ca_file,
            name=s.durable,  # how operators (and /connz) tell the gateway's connection
            disconnected_cb=self._disconnected,
            reconnected_cb=self._reconnected,
        )
        try:
            js = nc.jetstream(timeout=5)
            subscription = await self._bind(js)
            self.connected.set()
            self._on_subscribed()
            await self._consume(subscription)
        finally:
            self.connected.clear()
            await nc.close()

    async def _disconnected(self) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("lost the NATS node; reconnecting to another")

    async def _reconnected(self) -> None:
        self.connected.set()
        log.info("NATS connection back")

    async def _bind(self, js: JetStreamContext) -> JetStreamContext.PullSubscription:
        """Make sure the stream and the durable consumer exist (retrying through leader elections); bind to it."""
        s = self.settings
        config = ConsumerConfig(
            durable_name=s.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=s.ack_wait_s,
            max_ack_pending=-1,  # our read budget bounds what we hold; a limit here would only stall redeliveries
            num_replicas=s.replicas,
        )
        while True:
            self.heartbeat.beat(_PASS_S)
            try:
                await ensure_stream(js, s.replicas)
                await js.add_consumer(STREAM, config)
                return await js.pull_subscribe_bind(durable=s.durable, stream=STREAM)
            except (NatsError, TimeoutError) as exc:
                if self._stop.is_set():
                    raise
                log.warning("cannot set up the stream and consumer yet (%s); retrying", exc)
                await asyncio.sleep(_RETRY_S)

    async def _consume(self, subscription: JetStreamContext.PullSubscription) -> None:
        while not self._stop.is_set():
            self.heartbeat.beat(_PASS_S)
            budget = min(self.settings.batch, self._read_budget())
            if budget <= 0:
                await asyncio.sleep(0.002)
                continue
            try:
                messages = await subscription.fetch(budget, timeout=_FETCH_WAIT_S)
            except (NatsTimeout, TimeoutError):
                continue
            except NatsError as exc:
                log.warning("fetch from the stream failed (%s); trying again", exc)
                await asyncio.sleep(_FETCH_WAIT_S)
                continue
            log.debug("fetched %d messages", len(messages))
            deliveries: Deliveries = []
            for message in messages:
                local = next(self._ids)
                self._fetched[local] = message
                deliveries.append((topic_of(message.subject), message.data, local, 0))
            self._deliver(deliveries)
