"""The worker and the writer: judge deliveries as they arrive, write batches synchronously, then acknowledge.

Deliveries are validated, accounted for (``Ingest``) and judged by the alarm
engine on the network thread, as soon as a read brings them: an alarm is
published before the next read, never after a database write or a hand-over to
another thread (a thread wake-up per message would cost more than the message).
A full batch (or one whose linger has passed) is closed and queued for the
writer thread, which writes it to InfluxDB (retrying with capped exponential
back-off, without limit, while the broker keeps the messages un-acknowledged),
saves the per-crate state, PUBACKs every message of the batch, and tells each
crate how far it is stored. Batches are written while the next ones fill.
Memory is bounded: the broker should send at most Receive Maximum messages we
have not acknowledged, and since mosquitto 2.0.11 sends more after an
acknowledgement, the network thread reads nothing while twice that is held
(``read_budget``), so the closed batches waiting for the writer stay small. The
clock (``run``, on the caller's thread) closes lingering batches and runs the
periodic duties; it takes turns with the network thread on the ingest through
``lock``.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from adapters.influx_write import PointsRefusedError, Writer
from adapters.liveness import Heartbeat
from coldchain.errors import RetryableStoreError
from coldchain.record.lineprotocol import encode_lines
from coldchain.topics import rejected_topic, storage_ack_topic
from coldchain.wire import Rejected, StorageAck, encode
from gateway.archive import EvidenceArchive
from gateway.config import GatewayConfig
from gateway.ingest import Batch, Ingest
from gateway.mqtt_link import Deliveries, Delivery
from gateway.points import EXCERPT_BYTES, rejected_point

__all__ = ["CrateStore", "Link", "Worker"]

log = logging.getLogger(__name__)

_TICK_S = 0.2
_FORGET_EVERY_S = 60.0


class Link(Protocol):
    """What the worker needs of the MQTT link (``gateway.mqtt_link.MqttLink``)."""

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        """Publish at QoS 1."""

    def ack(self, deliveries: list[Delivery]) -> int:
        """Acknowledge stored deliveries."""


class CrateStore(Protocol):
    """Where crate state is saved (``gateway.statefile.StateFile``, or the cluster's key-value bucket)."""

    def save(self, snapshots: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Save the snapshots (crate, state) before the messages they cover are acknowledged."""

    def forget(self, crates: Iterable[str]) -> None:
        """Delete the state of crates forgotten for their silence."""


class Worker:
    """Owns the batches, the store and the acknowledgements; runs until ``stop`` is set."""

    def __init__(
        self,
        config: GatewayConfig,
        store: Writer,
        ingest: Ingest,
        link: Link,
        *,
        state: CrateStore | None = None,
        archive: EvidenceArchive | None = None,
    ) -> None:
        """``state``: where crate state is saved (``[state] file``); ``archive``: where accepted raw messages
        are kept, hash-chained (``[security] archive``; the ingest must be archiving)."""
        self.config = config
        self.store = store
        self.ingest = ingest
        self.link = link
        self.state = state
        self.archive = archive
        # the ingest is touched by the network thread (deliveries) and the clock (linger, alarm ticks)
        self.lock = threading.Lock()
        self.delivered = 0  # messages handed over by the network thread
        self.acknowledged = 0  # of those, acknowledged to the broker after their batch was stored
        self.held_max = 0  # the most messages held un-acknowledged at once (memory, for monitoring)
        self.batches = 0
        self.failed = False  # the writer thread died of an unexpected error
        self.write_failures = 0
        self.quarantined = 0
        self.last_write_ms = 0.0  # duration of the last successful write, for monitoring
        self.failing_since = 0.0  # wall time of the first failed attempt of the current write, 0 when fine
        self._batch = Batch()
        self._closing = False  # set once the last batch is closed: later deliveries stay un-acknowledged
        # closed batches waiting for the writer: never more than the broker's window of messages
        self._closed: queue.SimpleQueue[Batch | None] = queue.SimpleQueue()
        self._pending_acks: dict[str, int] = {}
        self._on_tick: list[Callable[[float], None]] = []
        self._on_exclusive_tick: list[Callable[[float], None]] = []
        if config.forget_after_s > 0:
            self._on_exclusive_tick.append(self._forget_idle)
        self._next_forget = 0.0
        self._writer = threading.Thread()
        # what the systemd watchdog vouches for: every pass of the writer, each wait and each write within its bound
        self.writer_heartbeat = Heartbeat("the InfluxDB writer thread", _TICK_S)
        self._write_allowance_s = 2 * config.influxdb.timeout_s  # connect, then the answer: each within the timeout

    @property
    def held(self) -> int:
        """Messages received and not yet acknowledged (waiting in a batch or for the writer)."""
        return self.delivered - self.acknowledged

    def read_budget(self) -> int:
        """How many more messages the network thread may take in: up to twice Receive Maximum held.

        The broker should never send more than Receive Maximum un-acknowledged messages, but
        mosquitto 2.0.11 does after an acknowledgement (eclipse/mosquitto#2301); without this a
        backlog after an outage would be read into memory whole.
        """
        return 2 * self.config.mqtt.receive_maximum - self.held

    @property
    def deaf(self) -> bool:
        """True while the broker sends nothing because we hold its window (writes failing or slow)."""
        return self.failing_since > 0 or self.held >= self.config.mqtt.receive_maximum

    def deliver(self, deliveries: Deliveries) -> None:
        """Called from the network thread with what one read brought: judge, publish alarms, batch."""
        handle, publish, size = self.ingest.handle, self.link.publish, self.config.batch.size
        with self.lock:
            self.delivered += len(deliveries)
            self.held_max = max(self.held_max, self.held)
            if self._closing:
                return  # after the last batch: the broker redelivers these after the restart
            batch = self._batch
            if not batch:
                batch.begin(time.monotonic())
            now_ms = int(time.time() * 1000)
            for delivery in deliveries:
                # its alarms and rejects leave before the next message is judged
                for topic, payload, retain in handle(delivery, batch, now_ms):
                    publish(topic, payload, retain)
            # the batch may end up a little over size: never beyond the broker's window
            if len(batch) >= size:
                self._close_batch()

    def adopt(self, crate: str, saved: dict[str, Any]) -> None:
        """Take ``crate`` over from the gateway that served it (a partition's lease was won): before its messages."""
        with self.lock:
            self.ingest.adopt(crate, saved, int(time.time() * 1000))

    def release(self, crates: Iterable[str]) -> None:
        """Forget ``crates`` at once (their partition's lease was lost or handed on): another gateway serves them."""
        with self.lock:
            for crate in crates:
                self.ingest.drop(crate)  # its storage ack pending, if any, is dropped by the writer then

    def every_tick(self, callback: Callable[[float], None], exclusive: bool = False) -> None:
        """Run ``callback(monotonic_now)`` at least every 0.2 s (monitoring, health, wall-clock alarm rules).

        ``exclusive``: it touches the ingest, so it runs while deliveries wait.
        """
        (self._on_exclusive_tick if exclusive else self._on_tick).append(callback)

    # --- the clock --------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Close lingering batches and run the ticks until ``stop``; then have what is pending written."""
        self._writer = threading.Thread(target=self._write_loop, args=(stop,), name="writer", daemon=True)
        self._writer.start()
        linger = self.config.batch.linger_s
        while True:
            batch = self._batch
            timeout = max(0.0, batch.started + linger - time.monotonic()) if batch else _TICK_S
            if stop.wait(min(timeout, _TICK_S)):
                break
            now = time.monotonic()
            with self.lock:
                if self._batch and now - self._batch.started >= linger:
                    self._close_batch()
                for callback in self._on_exclusive_tick:
                    callback(now)
            for callback in self._on_tick:
                callback(now)
        with self.lock:
            if self._batch:
                self._close_batch()
            self._closing = True
        self._closed.put(None)
        self._writer.join()

    def _forget_idle(self, now: float) -> None:
        """Every minute (or quarter of ``[state] forget_after``): forget the crates silent that long."""
        if now < self._next_forget:
            return
        self._next_forget = now + min(_FORGET_EVERY_S, self.config.forget_after_s / 4)
        gone = self.ingest.forget_idle(int(time.time() * 1000), int(self.config.forget_after_s * 1000))
        if not gone:
            return
        log.info("forgot %d crates silent for %.0f s: %s", len(gone), self.config.forget_after_s, ", ".join(gone[:20]))
        if self.state is not None:
            try:
                self.state.forget(gone)
            except (OSError, sqlite3.Error) as exc:  # a restart resumes them, to be forgotten again
                log.error("cannot delete forgotten crates from the state file (%s)", exc)

    def _close_batch(self) -> None:
        """Queue the open batch for the writer (lock held): its state snapshots are taken now."""
        batch, self._batch = self._batch, Batch()
        self.ingest.close(batch, with_snapshots=self.state is not None)
        self._closed.put(batch)

    # --- the writer thread ----------------------------------------------------------------------

    def _write_loop(self, stop: threading.Event) -> None:
        try:
            self._write_batches(stop)
        except Exception:
            # a writer that died would leave the gateway running without storing anything: stop it
            # instead (nothing is acknowledged that is not stored; the service manager restarts it)
            log.exception("the writer thread failed; stopping the gateway")
            self.failed = True
            stop.set()

    def _write_batches(self, stop: threading.Event) -> None:
        while True:
            self.writer_heartbeat.beat(_TICK_S)
            try:
                batch = self._closed.get(timeout=_TICK_S)
            except queue.Empty:
                self._storage_acks(time.monotonic())
                continue
            if batch is None:
                break
            if not self._flush(batch, stop):
                break
            self._storage_acks(time.monotonic())
        self._storage_acks(float("inf"))

    def _flush(self, batch: Batch, stop: threading.Event) -> bool:
        """Write the batch (retrying until it is stored or ``stop``), then save state and acknowledge."""
        delay = self.config.batch.retry_min_s
        started = time.monotonic()
        while batch.lines:
            try:
                self._write(batch.lines)
                break
            except RetryableStoreError as exc:
                self.write_failures += 1
                self.failing_since = self.failing_since or time.time()
                if stop.is_set():
                    log.warning("write failed while stopping (%s); the broker keeps the messages", exc)
                    return False
                log.warning(
                    "write of %d points failed (%s); retrying in %.1f s (messages stay unacknowledged)",
                    len(batch.lines),
                    exc,
                    delay,
                )
                self.writer_heartbeat.beat(delay)  # waiting on purpose: the broker keeps the messages
                stop.wait(delay)
                delay = min(delay * 2, self.config.batch.retry_max_s)
        self.last_write_ms = (time.monotonic() - started) * 1000
        self.failing_since = 0.0
        self.batches += 1
        if self.archive is not None:
            self.archive.append(batch.archived)  # synced before the acks, like the write
        while self.state is not None:
            # saved before the acks: what the broker will not redeliver, the saved state has seen
            try:
                self.state.save(batch.snapshots)
                break
            except (OSError, sqlite3.Error) as exc:
                self.write_failures += 1
                log.error("cannot save the state file (%s); retrying, the messages stay unacknowledged", exc)
                self.writer_heartbeat.beat(delay)
                if stop.wait(delay):
                    return False
                delay = min(delay * 2, self.config.batch.retry_max_s)
        self.link.ack(batch.deliveries)
        # a delivery of an earlier connection is not acknowledged but redelivered: held no more either way
        self.acknowledged += len(batch.deliveries)
        self._pending_acks.update(batch.through)
        return True

    def _write(self, lines: list[str]) -> None:
        """Write ``lines``; when the server refuses some, split to store the rest and quarantine the bad."""
        self.writer_heartbeat.beat(self._write_allowance_s)
        try:
            self.store.write(encode_lines(lines))
        except PointsRefusedError as exc:
            if len(lines) == 1:
                self._quarantine(lines[0], str(exc))
                return
            half = len(lines) // 2
            self._write(lines[:half])
            self._write(lines[half:])

    def _quarantine(self, line: str, problem: str) -> None:
        self.quarantined += 1  # counted as rejected for reason store_refused too
        log.error("InfluxDB refused a point for good, quarantined in 'rejected': %s (%s)", line[:200], problem)
        now_ms = int(time.time() * 1000)
        crate = None
        if ",crate=" in line:
            crate = line.split(",crate=", 1)[1].split(",", 1)[0].split(" ", 1)[0]
        excerpt = encode_lines([line])
        record = rejected_point("store_refused", crate, detail=problem, topic="", payload=excerpt, now_ms=now_ms)
        self.writer_heartbeat.beat(self._write_allowance_s)
        try:
            self.store.write(encode_lines([record]))
        except PointsRefusedError:
            log.error("the quarantine record was refused too; the point is only in this log: %s", line)
        refusal = Rejected("store_refused", problem, now_ms, line[:EXCERPT_BYTES], crate=crate or None)
        self.link.publish(rejected_topic(), encode(refusal), False)

    def _storage_acks(self, now: float) -> None:
        """Publish ``stored_through`` for crates whose value moved, at most once per ack interval each."""
        interval = self.config.batch.ack_interval_s
        crates = self.ingest.crates
        for crate, through in list(self._pending_acks.items()):
            state = crates.get(crate)
            if state is None or through == state.acked_through:
                del self._pending_acks[crate]
                continue
            if now - state.acked_at < interval:
                continue
            if self.link.publish(storage_ack_topic(crate), encode(StorageAck(crate, through)), retain=True):
                state.storage_acked(through, now)
                del self._pending_acks[crate]
