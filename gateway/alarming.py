"""The gateway's side of the alarm engine: inputs routed in, alarm events out to MQTT, InfluxDB and people.

``Ingest`` hands telemetry to ``Alarming.telemetry`` and every other delivery
(crate status, crate events, staff acks) to ``Alarming.route``. Each
``AlarmEvent`` is published retained on its alarm topic, written as an
``alarm`` point into the same batch as the message that caused it, and queued
durably for the notification channels, all before that message is
acknowledged. The engine's state is saved with the batch (``snapshots``): a
crate's rule state with the crate's own state, the alarm book under
``BOOK_KEY``, so a restarted gateway neither loses an active alarm nor raises
it twice. ``tick`` runs the wall-clock rules (stale data, offline crates,
held backlog alarms, escalation) from the worker thread.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

from coldchain.alarm_engine import AlarmEngine
from coldchain.errors import StoreError, WireFormatError
from coldchain.lifecycle import AckRejectedError, AlarmBook, AlarmEvent
from coldchain.monitor import CrateMonitor
from coldchain.topics import (
    ROOT,
    acks_from_topic,
    alarm_topic,
    refuse_reserved_crate,
    rejected_topic,
    valid_identifier,
)
from coldchain.wire import Telemetry, decode_staff_ack, describe, json_object, versioned_object
from gateway.config import GatewayConfig
from gateway.notify import Notifier, audit_point
from gateway.points import rejected_point
from gateway.store import PointsRefusedError

__all__ = ["BOOK_KEY", "Alarming", "Lost"]

log = logging.getLogger(__name__)

BOOK_KEY: Final = "#alarm-book"  # the state file's key of the alarm book ('#' is never in a crate id)
_TICK_S: Final = 0.25
_WRITE_RETRY_S: Final = 5.0  # the worker must not block on an absent InfluxDB every tick

# (crate, first_seq, last_seq, ts): seqs a crate says it dropped for good (an edge ``gap`` event)
Lost = tuple[str, int, int, int]
Outbox = list[tuple[str, bytes, bool]]


def _body(payload: bytes, topic_crate: str) -> dict[str, Any]:
    """A crate's status or event payload as a dict naming ``topic_crate``; WireFormatError otherwise."""
    body = versioned_object(payload)
    if body.get("crate") != topic_crate:
        claimed = describe(body.get("crate"))
        raise WireFormatError("crate_mismatch", f"payload crate {claimed} != topic crate {topic_crate!r}")
    return body


def _integer(body: dict[str, Any], key: str, minimum: int = 0) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value < 2**63:
        raise WireFormatError("schema", f"'{key}' must be an integer >= {minimum}, got {describe(value)}")
    return value


def _ack_request(topic: str, payload: bytes) -> str | None:
    """The optional ``request`` id of a staff ack payload, when it carries a valid one (never raises)."""
    if not topic.startswith(f"{ROOT}/acks/"):
        return None
    try:
        body = json_object(payload)
    except WireFormatError:
        return None
    request = body.get("request")
    return request if isinstance(request, str) and valid_identifier(request) else None


class Alarming:
    """Owns the alarm engine and the notifier; turns their events into publications, points and notifications."""

    def __init__(self, config: GatewayConfig, outbox: Outbox, rejects: Counter[str]) -> None:
        self.engine = AlarmEngine(
            config.profiles, config.default_profile, config.crate_profiles, config.alarm_policy, config.shipments
        )
        self.notifier = Notifier(())  # the real channels are attached at start-up (they open outbox files)
        # crate -> origin, destination, product of its shipment's record: built once, an alarm only looks it up
        self.shipments: dict[str, dict[str, str]] = {}
        for crate in config.shipments:
            record = config.shipment_of(crate)
            if record is not None and record.details:
                self.shipments[crate] = record.details
        self._future_ms = int(config.future_tolerance_s * 1000)
        self.outbox = outbox  # the ingest's: the worker publishes it after each delivery
        self.rejects = rejects
        self.events = 0
        self.acks = 0
        self.book_changed = False  # since the last snapshot: save the book with the next batch
        # ticks publish and write on their own: no batch is open then
        self.publish: Callable[[str, bytes, bool], object] | None = None
        self.write: Callable[[list[str]], None] | None = None
        self._tick_lines: list[str] = []
        self._next_tick = 0.0
        self._next_write = 0.0
        # True while the broker sends us nothing because we hold its window (InfluxDB away or slow)
        self.deaf: Callable[[], bool] = lambda: False

    # --- inputs ---------------------------------------------------------------------------------

    def telemetry(self, telemetry: Telemetry, arrival_ms: int, lines: list[str]) -> None:
        """Judge a new (neither duplicate nor late gap-filling) telemetry message.

        The first ``powered_on`` of a shipment (the crate's probe board was switched on) starts the
        profile's start delay: readings within it raise no value alarm while the probes settle. A later
        one (the board rebooted mid-shipment, e.g. a brown-out) does not: its probes are in place, and
        silencing them for the delay could hide an excursion under way.
        """
        crate = telemetry.crate
        monitor = self.engine.monitors.get(crate)
        if monitor is not None and monitor.last_ts is None and telemetry.profile is not None:
            # a status or lid event made the monitor before the crate said what it carries
            profile = self.engine.profile_for(telemetry.crate, telemetry.profile)
            if profile is not monitor.profile:
                fresh = CrateMonitor(telemetry.crate, profile)
                fresh.restore(monitor.snapshot())
                self.engine.monitors[telemetry.crate] = fresh
        powered_on = telemetry.powered_on
        # the monitor is made with the profile the crate reports, before its start delay begins
        if powered_on is not None and self.engine.monitor(crate, telemetry.profile).switched_on_ts is None:
            self.engine.switched_on(crate, powered_on)
        events = self.engine.telemetry(telemetry, arrival_ms)
        if events:
            self._emit(events, lines)

    def restart(self, crate: str) -> None:
        """The crate numbers its messages afresh (new device or shipment): fresh rule state for it."""
        self.engine.monitors.pop(crate, None)

    def route(self, topic: str, payload: bytes, lines: list[str], now_ms: int) -> Lost | None:
        """A status, event or staff ack delivery; the seqs a crate declares lost, if it did.

        Raises WireFormatError for a payload that cannot be read, or any message on the crate
        topics of a reserved login (``reserved_crate``; the caller rejects it).
        """
        parts = topic.split("/")
        if len(parts) == 6 and parts[2] == "acks":
            self._staff_ack(topic, payload, lines, now_ms)
            return None
        if len(parts) != 5 or parts[2] != "crates" or not valid_identifier(parts[3]):
            raise WireFormatError("topic", f"no crate message is expected on {topic[:200]!r}")
        crate, kind = parts[3], parts[4]
        refuse_reserved_crate(crate)  # the broker lets every login, staff too, write its own crate topics
        if not payload and kind == "status":
            return None  # someone deleted the retained status: nothing was said
        body = _body(payload, crate)
        if kind == "status":
            state = body.get("state")
            if state not in ("online", "offline"):
                raise WireFormatError("schema", f"status 'state' must be online or offline, got {describe(state)}")
            # arrival time: a last will's own ts is when it was registered, not when the crate vanished
            self._emit(self.engine.status(crate, state == "online", now_ms), lines)
            return None
        event = body.get("event")
        ts = self._when(body, now_ms)
        if event in ("lid_open", "lid_closed"):
            self._emit(self.engine.lid(crate, event == "lid_open", ts, now_ms), lines)
        elif event == "gap":
            first, last = _integer(body, "first_seq"), _integer(body, "last_seq")
            if last < first:
                raise WireFormatError("schema", f"gap event with last_seq {last} < first_seq {first}")
            log.warning("crate %s says seqs %d..%d are lost (%s)", crate, first, last, describe(body.get("reason")))
            return crate, first, last, ts
        elif not isinstance(event, str):
            raise WireFormatError("schema", f"'event' must be a string, got {describe(event)}")
        return None  # the crate's own excursion, stuck-value, clock events: its local view, stored nowhere

    def _when(self, body: dict[str, Any], now_ms: int) -> int:
        """An event's ``ts``: an epoch millisecond not beyond the future tolerance (it dates stored points)."""
        ts = _integer(body, "ts", 1)
        if ts > now_ms + self._future_ms:
            raise WireFormatError("future_ts", f"ts {ts} is {(ts - now_ms) / 1000:.0f} s in the future")
        return ts

    def _staff_ack(self, topic: str, payload: bytes, lines: list[str], now_ms: int) -> None:
        ack = decode_staff_ack(payload, acks_from_topic(topic))
        if ack.ts > now_ms + self._future_ms:  # the person's clock dates the acknowledged point
            raise WireFormatError("future_ts", f"ts {ack.ts} is {(ack.ts - now_ms) / 1000:.0f} s in the future")
        try:
            event = self.engine.acknowledge(ack)
        except AckRejectedError as exc:
            self.rejects["ack_rejected"] += 1
            detail = f"acknowledgement by {ack.by!r} refused: {exc.reason}"
            log.warning("%s (%s)", detail, topic)
            self.reject("ack_rejected", ack.crate, detail, topic=topic, payload=payload, lines=lines, now_ms=now_ms)
            return
        self.acks += 1
        log.info("alarm %s acknowledged by %s: %s", event.alarm.alarm_id, ack.by, ack.note)
        self._emit([event], lines)

    def reject(
        self, reason: str, crate: str | None, detail: str, *, topic: str, payload: bytes, lines: list[str], now_ms: int
    ) -> None:
        """Record a refused message: measurement ``rejected`` and ``coldchain/v1/rejected``."""
        lines.append(rejected_point(reason, crate, detail=detail, topic=topic, payload=payload, now_ms=now_ms))
        body: dict[str, Any] = {"v": 1, "reason": reason, "detail": detail[:500], "topic": topic[:200], "ts": now_ms}
        if crate is not None:
            body["crate"] = crate
        request = _ack_request(topic, payload)
        if request is not None:
            body["request"] = request  # the sender's id of a staff ack: it can tell its own refusal
        body["excerpt"] = payload[:256].decode("utf-8", "replace")
        self.outbox.append((rejected_topic(), json.dumps(body, separators=(",", ":")).encode(), False))

    # --- outputs --------------------------------------------------------------------------------

    def _emit(self, events: list[AlarmEvent], lines: list[str]) -> None:
        for event in events:
            alarm = event.alarm
            wire = alarm.to_wire()
            details = self.shipments.get(alarm.crate)
            if details is not None:
                wire.update(details)
            payload = json.dumps(wire, separators=(",", ":")).encode()
            self.outbox.append((alarm_topic(alarm.crate, alarm.rule, alarm.sensor), payload, True))
            lines.append(audit_point(event))
            # durable before the message behind it is acknowledged: a crash re-raises it, the outbox de-duplicates
            self.notifier.publish(event, details)
            self.events += 1
            self.book_changed = True

    def tick(self, now: float, wall_ms: int) -> None:
        """Wall-clock rules, at most every 0.25 s (``now`` monotonic): publish at once, write on our own."""
        if now < self._next_tick:
            return
        self._next_tick = now + _TICK_S
        if self.deaf():
            # no reading can reach us: that silence must not raise stale data on every crate
            self.engine.excuse_silence(wall_ms)
        events = self.engine.tick(wall_ms)
        if events:
            outbox: Outbox = []
            saved, self.outbox = self.outbox, outbox
            try:
                self._emit(events, self._tick_lines)
            finally:
                self.outbox = saved
            for topic, payload, retain in outbox:
                if self.publish is not None:
                    self.publish(topic, payload, retain)
        if self._tick_lines and self.write is not None and now >= self._next_write:
            try:
                self.write(self._tick_lines)
            except PointsRefusedError as exc:
                log.error("InfluxDB refused alarm points for good (%s): %s", exc, self._tick_lines)
            except StoreError as exc:
                self._next_write = now + _WRITE_RETRY_S
                log.warning("alarm points of a tick not written yet (%s); retrying in %.0f s", exc, _WRITE_RETRY_S)
                return
            self._tick_lines = []

    # --- state ----------------------------------------------------------------------------------

    def monitor_snapshot(self, crate: str) -> dict[str, Any] | None:
        """The crate's rule state, saved with the crate's own state."""
        monitor = self.engine.monitors.get(crate)
        if monitor is None:
            return None
        return {"profile": monitor.profile.name, "state": monitor.snapshot()}

    def book_snapshot(self) -> dict[str, Any] | None:
        """The alarm book when it changed since the last call (None: nothing to save)."""
        if not self.book_changed:
            return None
        self.book_changed = False
        return self.engine.book.to_dict()

    def restore(self, saved: dict[str, dict[str, Any]], wall_ms: int) -> None:
        """Resume from the state file's entries: the book under ``BOOK_KEY``, monitors under ``alarms``."""
        monitors = {c: s["alarms"] for c, s in saved.items() if c != BOOK_KEY and s.get("alarms")}
        book = saved.get(BOOK_KEY) or AlarmBook().to_dict()
        self.engine.restore({"book": book, "monitors": monitors}, now_ms=wall_ms)
        active = len(self.engine.book.open_alarms())
        log.info("resumed alarm state: %d crates, %d open alarms", len(monitors), active)
