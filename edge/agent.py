"""The agent loop: probe samples -> spool -> MQTT, in seq order, until stopped.

One thread (this loop) owns the spool and every decision; probe threads and the
MQTT network thread only enqueue ``edge.events``. Publishing always takes the
lowest unsent seq from the spool, so a backlog drains in order while new samples
keep being spooled behind it; at most ``mqtt.window`` messages wait for PUBACK.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Protocol

from coldchain.topics import events_topic, status_topic, telemetry_topic
from coldchain.wire import CrateStatus, Telemetry, encode
from edge.clock import Clock, system_clock
from edge.config import AgentConfig
from edge.events import Connected, Disconnected, Event, Notice, Published, Sample, StorageAcked
from edge.indicators import Indicators
from edge.mqtt_link import MqttLink
from edge.spool import Dropped, Spool, Stamp
from edge.watch import LocalWatch
from edge.watchdog import Watchdog

__all__ = ["Agent", "Probe"]

log = logging.getLogger(__name__)


class Probe(Protocol):
    """A probe driver: reads until ``stop`` is set, handing Samples and Notices to ``emit``."""

    def run(self, emit: Callable[[Event], None], stop: threading.Event) -> None: ...


class Agent:
    """Runs one crate: its probes, its spool and its MQTT link."""

    def __init__(
        self, config: AgentConfig, probes: list[Probe], clock: Clock | None = None, pin_factory: Any = None
    ) -> None:
        """``pin_factory`` is gpiozero's (None: the Pi's own pins) for the lid switch, buzzer and LED."""
        self.config = config
        self.crate = config.crate
        self.clock = clock = clock or system_clock()
        self.probes = probes
        self.inbox: queue.Queue[Event] = queue.Queue()
        self.spool = Spool(config.spool.path, config.spool.max_rows)
        self.link = MqttLink(config.mqtt, self.crate, self.inbox.put, clock.wall_ms)
        self.watch = LocalWatch(config.profile, config.stuck_samples)
        alarm = config.alarm
        fitted = alarm.buzzer_pin or alarm.led_pin or alarm.lid_pin
        self.indicators = Indicators(alarm, self.inbox.put, clock, pin_factory) if fitted else None
        if config.profile is None:
            log.warning("no [profiles] file configured: no local excursion alarm")
        self._topic = telemetry_topic(self.crate)
        self._connected = False
        # mid -> ("t", seq) for telemetry, ("e", event id) for events, ("s", 0) for status
        self._inflight: dict[int, tuple[str, int]] = {}
        first = self.spool.first_seq()
        self._sent_through = (first if first is not None else self.spool.next_seq) - 1
        self._events_sent_through = 0
        self._acked_through = -1
        self._waiting_since: int | None = None  # mono ms since unacknowledged messages exist
        self._retry_at: int | None = None  # mono ms when refused publishes are tried again
        self.published = 0
        self.refused = 0
        self.lost = 0
        self._held = len(self.spool.held_rows())  # samples taken while the wall clock was unset
        self.watchdog = Watchdog()
        # samples spooled per transaction at most: enough to keep up with a fast replay,
        # small enough that a kill -9 mid-write loses little that had arrived
        self._batch = min(100, config.spool.max_rows)

    # --- lifecycle ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> int:
        """Take samples and publish until ``stop`` is set; then flush and disconnect."""
        threads = [
            threading.Thread(target=self._supervise, args=(p, stop), name=f"probe-{i}", daemon=True)
            for i, p in enumerate(self.probes)
        ]
        for thread in threads:
            thread.start()
        self.link.start()
        log.info("agent for crate %s started; %d message(s) spooled", self.crate, len(self.spool))
        self.watchdog.ready()
        while not stop.is_set():
            self.step(timeout=0.1)
            self.watchdog.ping(self.clock.mono_ms())
        self.watchdog.stopping()
        for thread in threads:
            thread.join(1.0)
        self._drain_inbox()
        self._say_offline()
        self.link.stop()
        self.spool.close()
        if self.indicators is not None:
            self.indicators.close()
        log.info("agent for crate %s stopped; %d message(s) left in the spool", self.crate, len(self.spool))
        return 0

    def _supervise(self, probe: Probe, stop: threading.Event) -> None:
        """Run a probe driver; if it fails unexpectedly, log it and start it again (never a silent dead thread)."""
        while not stop.is_set():
            try:
                probe.run(self.inbox.put, stop)
            except Exception:
                log.exception("probe driver %s failed; restarting it in 1 s", type(probe).__name__)
                stop.wait(1.0)

    def step(self, timeout: float) -> None:
        """Handle what arrived within ``timeout`` seconds, then publish what the window allows."""
        with contextlib.suppress(queue.Empty):
            self._handle_all([self.inbox.get(timeout=timeout)])
        self._drain_inbox()
        if self._held and self.clock.plausible(self.clock.wall_ms()):
            self._correct_held()
        self._check_ack_timeout()
        self.pump()

    def _drain_inbox(self) -> None:
        while True:
            events: list[Event] = []
            with contextlib.suppress(queue.Empty):
                while len(events) < self._batch:
                    events.append(self.inbox.get_nowait())
            if not events:
                return
            self._handle_all(events)

    def _handle_all(self, events: list[Event]) -> None:
        """Handle events in order; samples that arrived together are spooled in one transaction."""
        samples: list[Sample] = []
        for event in events:
            if isinstance(event, Sample):
                samples.append(event)
                continue
            if samples:
                self._take_safely(samples)
                samples = []
            self.handle(event)
        if samples:
            self._take_safely(samples)

    def _take_safely(self, samples: list[Sample]) -> None:
        try:
            self.take_all(samples)
        except sqlite3.Error as exc:
            # disk full or failing: keep measuring and alarming locally rather than crash-looping
            self.lost += len(samples)
            log.error("spool write failed (%s): %d reading(s) lost (%d so far)", exc, len(samples), self.lost)

    def _say_offline(self) -> None:
        # a clean disconnect suppresses the last will, so say it ourselves
        if self._connected:
            payload = encode(CrateStatus(self.crate, "offline", self.clock.wall_ms()))
            self.link.publish(status_topic(self.crate), payload, retain=True)

    # --- events -------------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        """Act on one event from a probe or the MQTT link."""
        if isinstance(event, Sample):
            self._take_safely([event])
        elif isinstance(event, Notice):
            self.add_event(event.event, event.ts, event.detail)
        elif isinstance(event, Connected):
            self._on_connected()
            self._update_alarm()
        elif isinstance(event, Disconnected):
            if self._connected:
                log.warning("broker connection lost (%s); spooling", event.reason)
            self._connected = False
            self._update_alarm()
        elif isinstance(event, Published):
            self._on_published(event)
        elif isinstance(event, StorageAcked):
            self._on_storage_ack(event.stored_through)

    def take_all(self, samples: list[Sample]) -> list[int]:
        """Spool ticks as telemetry messages (one transaction, one fsync); return their seqs."""
        profile = self.config.profile_name
        items = []
        for sample in samples:
            held = None
            if not self.clock.plausible(sample.ts):
                held = Stamp(sample.mono_ms, self.clock.boot)
                if not self._held:
                    log.error("wall clock is unset (sample ts %d): holding readings until it is set (NTP?)", sample.ts)
                self._held += 1
            items.append((sample.ts, self._encoder(sample, profile), held))
        seqs, dropped = self.spool.append_many(items)
        if dropped is not None:
            self._announce_gap(dropped)
        for seq, sample in zip(seqs, samples, strict=True):
            for name, detail in self.watch.feed(seq, sample.ts, sample.readings):
                self.add_event(name, sample.ts, detail)
        self._update_alarm()
        return seqs

    def _encoder(self, sample: Sample, profile: str) -> Callable[[int], bytes]:
        def make(seq: int) -> bytes:
            return encode(Telemetry(self.crate, seq, sample.ts, sample.readings, profile))

        return make

    def _correct_held(self) -> None:
        """The wall clock is set now: restamp held samples from their monotonic time, flagged, and release them."""
        offset = self.clock.wall_ms() - self.clock.mono_ms()
        corrected = []
        uncertain = 0
        for seq, _, stamp, payload in self.spool.held_rows():
            body = json.loads(payload)
            if stamp.boot == self.clock.boot and stamp.boot != "unknown":
                body["ts"] = stamp.mono_ms + offset
                body["ts_corrected"] = True
            else:
                # taken in an earlier boot: its monotonic time has no known relation to now
                body["ts_uncertain"] = True
                uncertain += 1
            corrected.append((seq, int(body["ts"]), json.dumps(body, separators=(",", ":")).encode()))
        self.spool.release(corrected)
        self._held = 0
        if not corrected:
            return
        log.warning(
            "wall clock is set: %d held reading(s) restamped from monotonic time (%d could not be)",
            len(corrected),
            uncertain,
        )
        self.add_event(
            "clock_corrected",
            self.clock.wall_ms(),
            {
                "first_seq": corrected[0][0],
                "last_seq": corrected[-1][0],
                "count": len(corrected),
                "uncertain": uncertain,
            },
        )

    def _update_alarm(self) -> None:
        if self.indicators is None:
            return
        unheard = not self._connected or self.config.alarm.when == "always"
        self.indicators.alarm(bool(self.watch.active) and unheard)

    def _announce_gap(self, dropped: Dropped) -> None:
        log.error(
            "spool full (%d rows): dropped the oldest %d reading(s), seq %d..%d",
            self.spool.max_rows,
            dropped.count,
            dropped.first_seq,
            dropped.last_seq,
        )
        self._sent_through = max(self._sent_through, dropped.last_seq)
        self.add_event(
            "gap",
            self.clock.wall_ms(),
            {
                "reason": "spool_full",
                "first_seq": dropped.first_seq,
                "last_seq": dropped.last_seq,
                "count": dropped.count,
                "from_ts": dropped.from_ts,
                "to_ts": dropped.to_ts,
            },
        )

    def add_event(self, name: str, ts: int, detail: dict[str, Any]) -> None:
        """Spool an event for ``coldchain/v1/crates/{crate}/events``."""
        body = {"v": 1, "crate": self.crate, "ts": ts, "event": name, **detail}
        log.info("event %s %s", name, detail or "")
        self.spool.add_event(json.dumps(body, separators=(",", ":")).encode())

    def _on_connected(self) -> None:
        self._connected = True
        log.info("connected to broker %s:%d", self.config.mqtt.host, self.config.mqtt.port)
        self.link.subscribe_acks()
        online = encode(CrateStatus(self.crate, "online", self.clock.wall_ms()))
        mid = self.link.publish(status_topic(self.crate), online, retain=True)
        if mid is not None:
            self._inflight[mid] = ("s", 0)

    def _on_published(self, event: Published) -> None:
        kind, key = self._inflight.pop(event.mid, ("?", 0))
        if event.reason_code >= 0x80:
            self.refused += 1
            log.error("broker refused publish (%s, mid %d, %s %d); will retry", event.reason, event.mid, kind, key)
            self._retry_at = self.clock.mono_ms() + int(self.config.mqtt.refused_retry_s * 1000)
            if kind == "t":
                self._sent_through = min(self._sent_through, key - 1)
            elif kind == "e":
                self._events_sent_through = min(self._events_sent_through, key - 1)
            return
        if kind == "e":
            self.spool.remove_event(key)
        elif kind == "t":
            self.published += 1

    def _on_storage_ack(self, stored_through: int) -> None:
        if stored_through >= self.spool.next_seq:
            self._seq_went_back(stored_through)
            return
        if stored_through <= self._acked_through:
            return
        self._acked_through = stored_through
        removed = self.spool.prune(stored_through)
        self._waiting_since = self.clock.mono_ms()
        log.debug("gateway stored through seq %d; pruned %d", stored_through, removed)
        first = self.spool.first_seq()
        oldest = first if first is not None else self.spool.next_seq
        if stored_through < oldest - 1:
            # The gateway waits for seqs this crate no longer has (dropped when the spool was
            # full, or lost with a corrupt spool): say so, or its stored_through never moves on.
            log.error("gateway waits for seq %d..%d, which are not in the spool", stored_through + 1, oldest - 1)
            self.add_event(
                "gap",
                self.clock.wall_ms(),
                {
                    "reason": "not_in_spool",
                    "first_seq": stored_through + 1,
                    "last_seq": oldest - 1,
                    "count": oldest - 1 - stored_through,
                },
            )

    def _seq_went_back(self, stored_through: int) -> None:
        """The gateway has seqs this crate never issued: its seq was reset. Continue above them."""
        shift = self.spool.renumber_from(stored_through + 1)
        log.error(
            "gateway already stored seq %d, beyond anything this crate sent: seq was reset (spool lost?); "
            "renumbered %d spooled message(s) by +%d",
            stored_through,
            len(self.spool),
            shift,
        )
        self._inflight = {mid: entry for mid, entry in self._inflight.items() if entry[0] != "t"}
        first = self.spool.first_seq()
        self._sent_through = (first if first is not None else self.spool.next_seq) - 1
        self._acked_through = stored_through
        self.add_event("seq_reset", self.clock.wall_ms(), {"stored_through": stored_through, "shift": shift})

    def _check_ack_timeout(self) -> None:
        first = self.spool.first_seq()
        now = self.clock.mono_ms()
        if first is None or first > self._sent_through:
            self._waiting_since = None
            return
        if self._waiting_since is None:
            self._waiting_since = now
            return
        if self._connected and now - self._waiting_since > self.config.spool.ack_timeout_s * 1000:
            log.warning(
                "gateway has not confirmed seq %d..%d within %.0f s; publishing them again",
                first,
                self._sent_through,
                self.config.spool.ack_timeout_s,
            )
            self._sent_through = first - 1
            self._waiting_since = now

    # --- publishing ---------------------------------------------------------------------------

    def pump(self) -> None:
        """Hand the next spooled messages to the broker, oldest first, within the window."""
        if not self._connected:
            return
        if self._retry_at is not None:
            if self.clock.mono_ms() < self._retry_at:
                return
            self._retry_at = None
        room = self.config.mqtt.window - len(self._inflight)
        if room <= 0:
            return
        for event_id, payload in self.spool.events(self._events_sent_through, room):
            mid = self.link.publish(events_topic(self.crate), payload)
            if mid is None:
                return
            self._inflight[mid] = ("e", event_id)
            self._events_sent_through = event_id
            room -= 1
        if room <= 0:
            return
        for seq, payload in self.spool.pending(self._sent_through, room):
            mid = self.link.publish(self._topic, payload)
            if mid is None:
                return
            self._inflight[mid] = ("t", seq)
            self._sent_through = seq
