"""The gateway's link to the NATS cluster: the partitions it holds leases on, read in, MQTT 3.1.1 out.

The worker sees the same link as on mosquitto (``gateway.worker.Link``): each
message fetched from a partition's durable consumer becomes a ``Delivery`` (its
MQTT topic, payload, a local id in place of the packet id) handed to the worker
on the link's thread, and ``ack`` acknowledges to JetStream only what the worker
stored (written to InfluxDB, state saved), and only while the partition's lease
is still held. Every TTL/3 the leases are renewed, and one round says the
gateway lives, hands partitions beyond the fair share on (once what was read of them is
acknowledged) and takes free ones up to it (``gateway.leases``). Taking a
partition loads its crates' state from the key-value bucket (``gateway.crate_kv``)
into the worker before its first message is read; losing one (a renewal refused,
a fenced state write) stops its reads at once and forgets its crates and what
was read of it unacknowledged: JetStream sends that again, after ``ack_wait``, to
the next owner. Messages held longer than a third of ``ack_wait`` (a slow
InfluxDB) are marked in progress, so JetStream never redelivers them under a
living gateway. Crate status is not partitioned (a mapping would move its
retained message): each gateway reads the statuses published from its start and
keeps those of crates in its partitions (``gateway.crate_statuses``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError

from adapters.liveness import Heartbeat
from coldchain.settings.broker import BrokerSettings
from gateway.cluster_config import ClusterConfig, ClusterLogin
from gateway.cluster_publisher import ClusterPublisher
from gateway.crate_kv import CrateKv
from gateway.crate_statuses import read_statuses
from gateway.jetstream_stream import (
    STREAM,
    connect,
    crate_of,
    durable_of,
    ensure_stream,
    partition_of,
    partition_subject,
    topic_of,
)
from gateway.leases import Leases
from gateway.mqtt_link import Deliveries, Delivery, Reader

__all__ = ["HandOver", "JetStreamLink"]

log = logging.getLogger(__name__)

_FETCH_WAIT_S = 0.5  # a fetch that finds nothing returns after this: how often a lost partition is noticed
_RETRY_S = 1.0  # set-up steps (stream, buckets) failing while the cluster elects a leader
# one round of leases, or a set-up step (JetStream API requests time out after 5 s); longer is a wedged
# link for the systemd watchdog
_PASS_S = 15.0


class HandOver(Reader, Protocol):
    """What the link hands its reads and its crates to (``gateway.worker.Worker``)."""

    def adopt(self, crate: str, saved: dict[str, Any]) -> None:
        """Take a crate over from its saved state."""

    def release(self, crates: Iterable[str]) -> None:
        """Forget crates another gateway serves now."""


class _Partition:
    """A partition this gateway holds: its consumer, the task reading it, its crates."""

    def __init__(self, subscription: JetStreamContext.PullSubscription, crates: set[str]) -> None:
        self.subscription = subscription
        self.crates = crates
        self.draining = False  # over our fair share: read no more, hand the lease on once all is acknowledged
        self.task: asyncio.Task[None] | None = None

    def read(self, reading: Coroutine[Any, Any, None]) -> None:
        """Start the task that reads it."""
        self.task = asyncio.create_task(reading)

    def drain(self) -> None:
        """Read no more of it: it goes to another gateway once what was read is acknowledged."""
        self.draining = True


class JetStreamLink:
    """Holds partition leases, reads their consumers for the worker, publishes its acks and alarms over MQTT."""

    def __init__(self, cluster: ClusterConfig, login: ClusterLogin, on_subscribed: Callable[[], None]) -> None:
        """``on_subscribed``: called (on the link's thread) once the first round of leases is done."""
        self.cluster = cluster
        self.login = login
        self._on_subscribed = on_subscribed
        self.connected = threading.Event()  # the NATS connection is up and the leases' first round done
        self.failed = threading.Event()  # the link's thread died of an unexpected error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guarded_run, name="jetstream", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count(1)  # 0 would read as "delivered at QoS 0, nothing to acknowledge"
        self._fetched: dict[int, tuple[int, Msg, float]] = {}  # local id -> (partition, message, when fetched)
        self._partitions: dict[int, _Partition] = {}
        # what the gateway asked of JetStream, logged at the stop (where a reading's cost goes: bench/cluster_rig.py)
        self.traffic = dict.fromkeys(("fetches", "fetched", "acks", "in_progress"), 0)
        self.leases = Leases(login.gateway, cluster.partitions, cluster.lease_ttl_s, cluster.replicas)
        self.crate_state = CrateKv(cluster.partitions, cluster.replicas, self._drop_soon)
        self._reader: HandOver | None = None
        # what the systemd watchdog vouches for: every round of leases (adapters.liveness)
        self.heartbeat = Heartbeat("the JetStream link thread", _PASS_S)
        mqtt = BrokerSettings(
            brokers=cluster.brokers,
            protocol="3.1.1",  # nats-server speaks no MQTT 5
            username=login.username,
            password_file=login.password_file,
            ca_file=login.ca_file,
        )
        self.publisher = ClusterPublisher(mqtt, f"{login.gateway}-out")

    # --- used by the worker -------------------------------------------------------------------

    def start(self, reader: HandOver) -> None:
        """Connect in the background; what each fetch brings goes to ``reader`` (on the link's thread)."""
        self._reader = reader
        self.publisher.start()
        self._thread.start()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        """Publish at QoS 1 over MQTT (crates and staff receive it as the contract says)."""
        return self.publisher.publish(topic, payload, retain)

    def ack(self, deliveries: Iterable[Delivery]) -> int:
        """Acknowledge stored deliveries to JetStream, those of partitions still held; how many acks were sent."""
        fetched = [self._fetched.pop(d[2], None) for d in deliveries]
        messages = [f[1] for f in fetched if f is not None and f[0] in self._partitions]
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
        """Stop reading, give the leases up, close the NATS connection and the MQTT publisher."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.publisher.stop()

    # --- the link's thread -----------------------------------------------------------------------

    async def _ack(self, messages: list[Msg]) -> None:
        self.traffic["acks"] += len(messages)
        for message in messages:
            await message.ack()
        await messages[0]._client.flush(timeout=5)

    def _guarded_run(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception:
            log.exception("the JetStream link thread failed; stopping the gateway")
            self.failed.set()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        login = self.login
        nc = await connect(
            list(self.cluster.nats),
            login.username,
            login.password,
            login.ca_file,
            name=login.gateway,  # how operators (and /connz) tell the gateway's connection
            disconnected_cb=self._disconnected,
            reconnected_cb=self._reconnected,
        )
        try:
            js = nc.jetstream(timeout=5)
            await self._set_up(js)
            # renewals on their own: taking partitions up (loading crates, binding consumers) may take longer than a TTL
            statuses = read_statuses(js, self._keeps_status, self._require_reader().deliver)
            helpers = [statuses, self._keep_in_progress(), self._renew()]
            tasks = [asyncio.create_task(helper) for helper in helpers]
            first = True
            while not self._stop.is_set():
                self.heartbeat.beat(_PASS_S)
                await self._round(js)
                if first:
                    first = False
                    self.connected.set()
                    self._on_subscribed()
                await asyncio.sleep(self.cluster.renew_s)
            for task in tasks:
                task.cancel()
            for partition in list(self._partitions):
                await self._drop(partition)
            await self.leases.leave()
            log.info("JetStream traffic: %s", ", ".join(f"{what} {count}" for what, count in self.traffic.items()))
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

    async def _set_up(self, js: JetStreamContext) -> None:
        """The stream and the buckets exist (retrying through leader elections)."""
        while True:
            self.heartbeat.beat(_PASS_S)
            try:
                await ensure_stream(js, self.cluster.replicas)
                await self.leases.open(js)
                await self.crate_state.open(js)
                return
            except (NatsError, TimeoutError) as exc:
                if self._stop.is_set():
                    raise
                log.warning("cannot set up the stream and buckets yet (%s); retrying", exc)
                await asyncio.sleep(_RETRY_S)

    async def _renew(self) -> None:
        """Renew the leases every TTL/3; a lease not renewed is a partition dropped at once."""
        while True:
            for partition in await self.leases.renew():
                await self._drop(partition)
            await asyncio.sleep(self.cluster.renew_s)

    async def _round(self, js: JetStreamContext) -> None:
        """Hand on what is beyond the fair share, or take free partitions up to it."""
        try:
            share = await self.leases.share()
        except (NatsError, TimeoutError) as exc:
            log.warning("cannot count the living gateways now (%s)", exc)
            return
        kept = [p for p, held in self._partitions.items() if not held.draining]
        for partition in sorted(kept, reverse=True)[: max(0, len(kept) - share)]:
            log.info("partition %d is beyond our share of %d: handing it on", partition, share)
            self._partitions[partition].drain()
        for partition, held in list(self._partitions.items()):
            done = held.task is None or held.task.done()  # its reader may still take what was left to us
            if held.draining and done and not any(f[0] == partition for f in list(self._fetched.values())):
                await self._drop(partition)
                await self.leases.release(partition)
        wanted = share - len(self._partitions)
        if wanted > 0:
            for partition in await self.leases.acquire(wanted):
                self.heartbeat.beat(_PASS_S)  # each set-up is bounded by the cluster's request timeouts
                await self._serve(js, partition)

    async def _serve(self, js: JetStreamContext, partition: int) -> None:
        """A lease was won: load the partition's crates, bind its consumer, start reading it."""
        c = self.cluster
        config = ConsumerConfig(
            durable_name=durable_of(partition),
            filter_subject=partition_subject(partition),
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=c.ack_wait_s,
            max_ack_pending=-1,  # our read budget bounds what we hold; a limit here would only stall redeliveries
            num_replicas=c.replicas,
        )
        try:
            saved = await self.crate_state.load(partition)
            with contextlib.suppress(BadRequestError):  # it exists with other settings: keep them
                await js.add_consumer(STREAM, config)
            subscription = await js.pull_subscribe_bind(durable=config.durable_name or "", stream=STREAM)
        except (NatsError, TimeoutError) as exc:
            log.warning("cannot take up partition %d now (%s); giving its lease up", partition, exc)
            await self.leases.release(partition)
            return
        if partition not in self.leases.held:  # lost while we set it up: another gateway may read it already
            with contextlib.suppress(NatsError, TimeoutError):
                await subscription.unsubscribe()
            return
        reader = self._require_reader()
        for crate, snapshot in saved.items():
            try:
                reader.adopt(crate, snapshot)
            except Exception as exc:  # written by another version, or damaged: that crate alone starts afresh
                log.error("crate %s: its saved state cannot be read (%r); it starts afresh", crate, exc)
        held = self._partitions[partition] = _Partition(subscription, crates=set(saved))
        held.read(self._read(partition, held))
        log.info("serving partition %d (%d crates resumed)", partition, len(saved))

    def _require_reader(self) -> HandOver:
        if self._reader is None:
            raise RuntimeError("JetStreamLink.start() first")
        return self._reader

    def _drop_soon(self, partition: int) -> None:
        """A fenced state write: drop the partition (from the event loop, where the write ran)."""
        if partition in self._partitions:
            self.leases.forfeit(partition)
            asyncio.get_running_loop().create_task(self._drop(partition))

    async def _drop(self, partition: int) -> None:
        """Stop reading ``partition`` at once; forget its crates and what was read of it unacknowledged."""
        held = self._partitions.pop(partition, None)
        if held is None:
            return
        for local, fetched in list(self._fetched.items()):
            if fetched[0] == partition:
                self._fetched.pop(local, None)
        self._require_reader().release(held.crates)
        self.crate_state.drop(partition)
        if held.task is not None and held.task is not asyncio.current_task():
            held.task.cancel()
        with contextlib.suppress(NatsError, TimeoutError):
            await held.subscription.unsubscribe()
        log.info("stopped serving partition %d (%d crates)", partition, len(held.crates))

    async def _read(self, partition: int, held: _Partition) -> None:
        """Fetch ``partition`` for the worker while we hold it and it is not draining."""
        reader = self._require_reader()
        while not self._stop.is_set() and self._partitions.get(partition) is held and not held.draining:
            budget = min(self.cluster.batch, reader.read_budget())
            if budget <= 0:
                await asyncio.sleep(0.002)
                continue
            self.traffic["fetches"] += 1
            try:
                messages = await held.subscription.fetch(budget, timeout=_FETCH_WAIT_S)
            except (NatsTimeout, TimeoutError):
                continue
            except NatsError as exc:
                log.warning("fetch from partition %d failed (%s); trying again", partition, exc)
                await asyncio.sleep(_FETCH_WAIT_S)
                continue
            if self._partitions.get(partition) is not held:
                return  # lost while fetching: never delivered, never acknowledged
            self._deliver(partition, held, messages)
        if held.draining and not self._stop.is_set() and self._partitions.get(partition) is held:
            await self._take_stranded(partition, held)

    async def _take_stranded(self, partition: int, held: _Partition) -> None:
        """Deliver what the server sent after our last fetch returned (a pull request it still held): left in the
        subscription's queue it would come again only after ack_wait, behind newer messages the next owner reads
        first, and every hand-on under load would open a gap and fill it (a gap point of nothing lost)."""
        await asyncio.sleep(_FETCH_WAIT_S)  # no pull request of ours outlives this
        stranded = held.subscription.pending_msgs
        if not stranded or self._partitions.get(partition) is not held:
            return
        try:
            # the queue first, then one more at most: a request without expires that the server answers at once
            messages = await held.subscription.fetch(stranded + 1, timeout=_FETCH_WAIT_S)
        except (NatsError, TimeoutError):
            return  # left to ack_wait, as before
        log.info(
            "partition %d: took %d messages sent after our last fetch before handing it on", partition, len(messages)
        )
        self._deliver(partition, held, messages)

    def _deliver(self, partition: int, held: _Partition, messages: list[Msg]) -> None:
        deliveries: Deliveries = []
        now = time.monotonic()
        self.traffic["fetched"] += len(messages)
        for message in messages:
            local = next(self._ids)
            self._fetched[local] = (partition, message, now)
            topic = topic_of(message.subject)
            self._met(held, crate_of(topic))
            deliveries.append((topic, message.data, local, 0))
        log.debug("fetched %d messages of partition %d", len(messages), partition)
        self._require_reader().deliver(deliveries)

    def _keeps_status(self, crate: str) -> bool:
        """True when ``crate``'s status is ours to judge: its partition is held and not being handed on."""
        held = self._partitions.get(partition_of(crate, self.cluster.partitions))
        if held is None or held.draining:
            return False
        self._met(held, crate)
        return True

    def _met(self, held: _Partition, crate: str) -> None:
        """A message of ``crate`` in a partition we hold: a crate new to the cluster gets its state created."""
        if crate and crate not in held.crates:
            held.crates.add(crate)
            self.crate_state.adopt(crate)

    async def _keep_in_progress(self) -> None:
        """Tell JetStream we still work on what we hold for a third of ack_wait (a slow InfluxDB write)."""
        period = self.cluster.ack_wait_s / 3
        while True:
            await asyncio.sleep(period)
            due = time.monotonic() - period
            for partition, message, fetched_at in list(self._fetched.values()):
                if fetched_at < due and partition in self._partitions:
                    self.traffic["in_progress"] += 1
                    with contextlib.suppress(NatsError):
                        await message.in_progress()
