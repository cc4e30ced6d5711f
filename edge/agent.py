"""The agent loop: probe samples -> spool -> MQTT, in seq order, until stopped.

One thread (this loop) owns the spool and every decision; probe threads and the
MQTT network thread only enqueue ``edge.events``. Each sample is spooled before
anything else happens to it; ``edge.forwarder`` then publishes the lowest unsent seq,
so a backlog drains in order while new samples keep being spooled behind it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Protocol

from adapters.sd_notify import Watchdog
from coldchain.wire import CrateEvent, Telemetry, encode, restamped, with_powered_on
from edge.clock import Clock, system_clock
from edge.config import AgentConfig
from edge.events import Connected, Disconnected, Event, Notice, PowerOn, Published, Sample, StorageAcked
from edge.forwarder import Forwarder
from edge.hearing import Hearing
from edge.indicators import Indicators
from edge.mqtt_link import MqttLink
from edge.probe_checks import ProbeChecks
from edge.spool import Spool, Stamp

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
        self.checks = ProbeChecks(config.profile, config.stuck_samples)
        alarm = config.alarm
        fitted = alarm.buzzer_pin or alarm.led_pin or alarm.lid_pin
        self.indicators = Indicators(alarm, self.inbox.put, clock, pin_factory) if fitted else None
        if config.profile is None:
            log.warning("no [profiles] file configured: no local excursion alarm")
        self.forwarder = Forwarder(config, self.spool, self.link, clock, self.add_event)
        self.hearing = Hearing(int(config.spool.gateway_silent_s * 1000))
        self.lost = 0
        # samples and events stamped while the wall clock was unset
        self._held = len(self.spool.held_rows()) + len(self.spool.held_events())
        self.watchdog = Watchdog()
        # samples spooled per transaction at most: enough to keep up with a fast replay,
        # small enough that a kill -9 mid-write loses little that had arrived
        self._batch = min(100, config.spool.max_rows)
        # (seq, sample) spooled before its board's first heartbeat: published once that dates the switch-on
        self._awaiting: list[tuple[int, Sample]] = []

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
        self.forwarder.say_offline()
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
        if self._awaiting:
            self._stop_awaiting(lambda sample: self.clock.mono_ms() >= (sample.power_on_by or 0))
        self.forwarder.check_ack_timeout()
        self.forwarder.pump()
        self._listen_for_gateway()

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

    # --- events -------------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        """Act on one event from a probe or the MQTT link."""
        if isinstance(event, Sample):
            self._take_safely([event])
        elif isinstance(event, Notice):
            self.add_event(event.event, event.ts, event.detail, event.mono_ms)
        elif isinstance(event, PowerOn):
            self._powered_on(event)
        elif isinstance(event, Connected):
            self.forwarder.on_connected()
            self._update_alarm()
        elif isinstance(event, Disconnected):
            self.forwarder.on_disconnected(event.reason)
            self._update_alarm()
        elif isinstance(event, Published):
            self.forwarder.on_published(event)
        elif isinstance(event, StorageAcked):
            self.forwarder.on_storage_ack(event.stored_through)
            if self.hearing.acked(event.stored_through):
                log.warning("the gateway is heard again: stored through seq %d", event.stored_through)
                self.add_event("gateway_heard", self.clock.wall_ms(), {"stored_through": event.stored_through})
                self._update_alarm()

    def _listen_for_gateway(self) -> None:
        """Connected but no storage ack for what was published: nobody hears the crate, as when offline."""
        waited_ms = self.hearing.check(self.clock.mono_ms(), self.forwarder.connected, self.forwarder.awaiting_ack)
        if waited_ms is None:
            return
        log.error(
            "the gateway has stored nothing this crate published for %.0f s (broker connected): "
            "treating the crate as unheard",
            waited_ms / 1000,
        )
        detail = {"silent_s": round(waited_ms / 1000, 1), "stored_through": self.hearing.last_ack}
        self.add_event("gateway_silent", self.clock.wall_ms(), detail)
        self._update_alarm()

    def take_all(self, samples: list[Sample]) -> list[int]:
        """Spool ticks as telemetry messages (one transaction, one fsync); return their seqs."""
        profile = self.config.profile_name
        items = []
        for sample in samples:
            items.append((sample.ts, self._encoder(sample, profile), self._hold_if_unset(sample.ts, sample.mono_ms)))
        seqs, dropped = self.spool.append_many(items)
        if dropped is not None:
            self.forwarder.announce_gap(dropped)
        self._awaiting += [(seq, s) for seq, s in zip(seqs, samples, strict=True) if s.power_on_by is not None]
        self.forwarder.hold_from = self._awaiting[0][0] if self._awaiting else None
        for seq, sample in zip(seqs, samples, strict=True):
            for name, detail in self.checks.feed(seq, sample.ts, sample.readings):
                self.add_event(name, sample.ts, detail, sample.mono_ms)
        self._update_alarm()
        return seqs

    def _encoder(self, sample: Sample, profile: str) -> Callable[[int], bytes]:
        def make(seq: int) -> bytes:
            return encode(Telemetry(self.crate, seq, sample.ts, sample.readings, profile, sample.powered_on))

        return make

    def _powered_on(self, power_on: PowerOn) -> None:
        """A probe board dated its switch-on: its spooled samples that waited for it carry it, and may leave."""
        patched = []
        for seq, sample in self._awaiting:
            if sample.probe != power_on.probe:
                continue
            powered_on = power_on.stamp(sample.ts, sample.mono_ms, sample.board_clock)
            payload = self.spool.payload(seq)
            if powered_on is None or payload is None:
                continue
            amended = with_powered_on(payload, sample.ts, powered_on)
            if amended is not None:  # else restamped or renumbered meanwhile: not the row it was spooled as
                patched.append((seq, amended))
        self.spool.replace_payloads(patched)
        self._stop_awaiting(lambda sample: sample.probe == power_on.probe)

    def _stop_awaiting(self, done: Callable[[Sample], bool]) -> None:
        """Samples no longer waiting for a switch-on time (told, or waited long enough) may be published."""
        self._awaiting = [(seq, sample) for seq, sample in self._awaiting if not done(sample)]
        self.forwarder.hold_from = self._awaiting[0][0] if self._awaiting else None

    def _correct_held(self) -> None:
        """The wall clock is set now: restamp held samples and events from monotonic time, flagged, release them."""
        offset = self.clock.wall_ms() - self.clock.mono_ms()
        corrected = []
        uncertain = 0
        for seq, _, stamp, payload in self.spool.held_rows():
            ts = self._restamp(stamp, offset)
            uncertain += ts is None
            amended, ts_now = restamped(payload, ts)
            corrected.append((seq, ts_now, amended))
        self.spool.release(corrected)
        events = []
        for event_id, stamp, payload in self.spool.held_events():
            events.append((event_id, restamped(payload, self._restamp(stamp, offset))[0]))
        self.spool.release_events(events)
        self._held = 0
        log.warning(
            "wall clock is set: %d held reading(s) and %d event(s) restamped from monotonic time (%d could not be)",
            len(corrected),
            len(events),
            uncertain,
        )
        if corrected:
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

    def _restamp(self, stamp: Stamp, offset: int) -> int | None:
        """The wall time of a held message from its monotonic stamp; None when taken in an earlier boot,
        whose monotonic time has no known relation to now."""
        if stamp.boot == self.clock.boot and stamp.boot != "unknown":
            return stamp.mono_ms + offset
        return None

    def _update_alarm(self) -> None:
        if self.indicators is None:
            return
        unheard = not self.forwarder.connected or self.hearing.silent or self.config.alarm.when == "always"
        self.indicators.alarm(bool(self.checks.active) and unheard)

    def add_event(self, name: str, ts: int, detail: dict[str, Any], mono_ms: int | None = None) -> None:
        """Spool an event for ``coldchain/v1/crates/{crate}/events`` (held like a sample if ``ts`` is unset)."""
        log.info("event %s %s", name, detail or "")
        held = self._hold_if_unset(ts, self.clock.mono_ms() if mono_ms is None else mono_ms)
        self.spool.add_event(encode(CrateEvent(self.crate, ts, name, detail)), held)

    def _hold_if_unset(self, ts: int, mono_ms: int) -> Stamp | None:
        """A stamp to correct ``ts`` from later when it comes from an unset clock, else None."""
        if self.clock.plausible(ts):
            return None
        if not self._held:
            log.error("wall clock is unset (ts %d): holding readings and events until it is set (NTP?)", ts)
        self._held += 1
        return Stamp(mono_ms, self.clock.boot)
