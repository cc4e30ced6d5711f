"""The worker thread: batches deliveries, writes them synchronously, then acknowledges.

Order of events for a batch: validate and account (``Ingest``), publish alarms at
once, write the points to InfluxDB (retrying with capped exponential back-off,
without limit, while the broker keeps the messages un-acknowledged), then PUBACK
every message of the batch, then tell each crate how far it is stored.
Memory is bounded by the broker: it sends at most Receive Maximum messages
that we have not acknowledged.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

from coldchain.errors import RetryableStoreError
from coldchain.topics import rejected_topic, storage_ack_topic
from coldchain.wire import StorageAck, encode
from gateway.config import GatewayConfig
from gateway.ingest import Batch, Ingest
from gateway.mqtt_link import Delivery
from gateway.points import EXCERPT_BYTES, rejected_point
from gateway.statefile import StateFile
from gateway.store import PointsRefusedError, Store

__all__ = ["Link", "Worker"]

log = logging.getLogger(__name__)


class Link(Protocol):
    """What the worker needs of the MQTT link (``gateway.mqtt_link.MqttLink``)."""

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        """Publish at QoS 1."""

    def ack(self, deliveries: list[Delivery]) -> int:
        """Acknowledge stored deliveries."""


class Worker:
    """Owns the batch, the store and the acknowledgements; runs until ``stop`` is set."""

    def __init__(self, config: GatewayConfig, store: Store, ingest: Ingest, state: StateFile | None = None) -> None:
        self.config = config
        self.store = store
        self.ingest = ingest
        self.state = state
        self.link: Link  # attached before run(): the link needs our deliver() first
        self.queue: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        self.batches = 0
        self.write_failures = 0
        self.quarantined = 0
        self.last_write_ms = 0.0  # duration of the last successful write, for monitoring
        self.last_write_at = 0.0  # wall time of the last successful write
        self.failing_since = 0.0  # wall time of the first failed attempt of the current write, 0 when fine
        self._pending_acks: set[str] = set()
        self._on_tick: list[Callable[[float], None]] = []

    def deliver(self, delivery: Delivery) -> None:
        """Called from paho's thread: hand over, nothing more."""
        self.queue.put(delivery)

    def every_tick(self, callback: Callable[[float], None]) -> None:
        """Run ``callback(monotonic_now)`` on each worker wake-up (monitoring, health)."""
        self._on_tick.append(callback)

    # --- the loop -------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Process deliveries until ``stop``; then write what is pending once more."""
        size, linger = self.config.batch.size, self.config.batch.linger_s
        get, handle, ingest = self.queue.get, self.ingest.handle, self.ingest
        batch = Batch()
        while not stop.is_set():
            now = time.monotonic()
            timeout = max(0.0, batch.started + linger - now) if batch else 0.2
            try:
                delivery = get(timeout=min(timeout, 0.2))
            except queue.Empty:
                delivery = None
            if delivery is not None:
                now_ms = int(time.time() * 1000)
                if not batch:
                    batch.started = time.monotonic()
                handle(delivery, batch, now_ms)
                if ingest.outbox:
                    self._publish_outbox()
                while len(batch) < size:
                    try:
                        delivery = get(block=False)
                    except queue.Empty:
                        break
                    handle(delivery, batch, now_ms)
                    if ingest.outbox:
                        self._publish_outbox()
            now = time.monotonic()
            if batch and (len(batch) >= size or now - batch.started >= linger):
                if not self._flush(batch, stop):
                    return
                batch = Batch()
            if self._pending_acks:
                self._storage_acks(self._pending_acks, now)
            for callback in self._on_tick:
                callback(now)
        if batch:
            self._flush(batch, None)
        self._storage_acks(self._pending_acks, float("inf"))

    def _publish_outbox(self) -> None:
        for topic, payload, retain in self.ingest.outbox:
            self.link.publish(topic, payload, retain)
        self.ingest.outbox.clear()

    # --- writing --------------------------------------------------------------------------------

    def _flush(self, batch: Batch, stop: threading.Event | None) -> bool:
        """Write the batch (retrying until it is stored or ``stop``), then acknowledge it."""
        delay = self.config.batch.retry_min_s
        started = time.monotonic()
        while batch.lines:
            try:
                self._write(batch.lines)
                break
            except RetryableStoreError as exc:
                self.write_failures += 1
                self.failing_since = self.failing_since or time.time()
                for callback in self._on_tick:
                    callback(time.monotonic())
                if stop is None:
                    log.warning("final write failed (%s); the broker keeps the messages for the next start", exc)
                    return False
                log.warning(
                    "write of %d points failed (%s); retrying in %.1f s (messages stay unacknowledged)",
                    len(batch.lines),
                    exc,
                    delay,
                )
                if stop.wait(delay):
                    return False
                delay = min(delay * 2, self.config.batch.retry_max_s)
        self.last_write_ms = (time.monotonic() - started) * 1000
        self.last_write_at = time.time()
        self.failing_since = 0.0
        self.batches += 1
        if self.state is not None:
            # saved before the acks: what the broker will not redeliver, the saved state has seen
            self.state.save(self.ingest.snapshots(batch.crates))
        self.link.ack(batch.deliveries)
        self._pending_acks |= batch.crates
        return True

    def _write(self, lines: list[str]) -> None:
        """Write ``lines``; when the server refuses some, split to store the rest and quarantine the bad."""
        try:
            self.store.write("\n".join(lines).encode())
        except PointsRefusedError as exc:
            if len(lines) == 1:
                self._quarantine(lines[0], str(exc))
                return
            half = len(lines) // 2
            self._write(lines[:half])
            self._write(lines[half:])

    def _quarantine(self, line: str, problem: str) -> None:
        self.quarantined += 1
        self.ingest.rejects["store_refused"] += 1
        log.error("InfluxDB refused a point for good, quarantined in 'rejected': %s (%s)", line[:200], problem)
        now_ms = int(time.time() * 1000)
        crate = None
        if ",crate=" in line:
            crate = line.split(",crate=", 1)[1].split(",", 1)[0].split(" ", 1)[0]
        record = rejected_point("store_refused", crate, detail=problem, topic="", payload=line.encode(), now_ms=now_ms)
        try:
            self.store.write(record.encode())
        except PointsRefusedError:
            log.error("the quarantine record was refused too; the point is only in this log: %s", line)
        body = {
            "v": 1,
            "reason": "store_refused",
            "detail": problem[:500],
            "ts": now_ms,
            "excerpt": line[:EXCERPT_BYTES],
        }
        if crate:
            body["crate"] = crate
        self.link.publish(rejected_topic(), json.dumps(body, separators=(",", ":")).encode(), False)

    # --- storage acknowledgements ---------------------------------------------------------------

    def _storage_acks(self, crates: set[str], now: float) -> None:
        """Publish ``stored_through`` for crates whose value moved, at most once per ack interval each."""
        interval = self.config.batch.ack_interval_s
        done = []
        for crate in crates:
            state = self.ingest.crates.get(crate)
            through = state.seqs.stored_through if state is not None else None
            if state is None or through is None or through == state.acked_through:
                done.append(crate)
                continue
            if now - state.acked_at < interval:
                continue
            if self.link.publish(storage_ack_topic(crate), encode(StorageAck(crate, through)), retain=True):
                state.acked_through = through
                state.acked_at = now
                done.append(crate)
        crates.difference_update(done)
