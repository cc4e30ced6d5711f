"""The gateway's side of the alarm engine: inputs routed in, alarm events out to MQTT, InfluxDB and people.

``Ingest`` hands telemetry to ``Alarming.telemetry`` and every other delivery
(crate status, crate events, staff acks) to ``Alarming.route``. Each
``AlarmChange`` is returned as a publication (retained, on its alarm topic) for
the caller to publish, written as an ``alarm`` point into the same batch as the
message that caused it, and queued durably for the notification channels, all
before that message is acknowledged. The engine's state is saved with the batch (``snapshots``): a
crate's rule state with the crate's own state, the alarm book under
``BOOK_KEY``, so a restarted gateway neither loses an active alarm nor raises
it twice. ``tick`` runs the wall-clock rules (stale data, offline crates,
held backlog alarms, escalation) from the worker thread, and publishes and
writes what they raise itself (no batch is open then).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Final

from adapters.influx_write import PointsRefusedError
from coldchain.alarms.engine import AlarmEngine
from coldchain.alarms.lifecycle import AckRejectedError, AlarmBook, AlarmChange
from coldchain.errors import StoreError, WireFormatError
from coldchain.position.geometry import Position
from coldchain.position.measurements import POSITION_EVENTS, position_point
from coldchain.topics import (
    CRATE_KINDS,
    ROOT,
    STAFF_ACK,
    STATUS,
    Route,
    alarm_topic,
    refuse_reserved_crate,
    rejected_topic,
    valid_identifier,
)
from coldchain.wire import (
    GAP,
    LID_CLOSED,
    LID_OPEN,
    ONLINE,
    Rejected,
    Telemetry,
    decode_crate_status,
    decode_event,
    decode_staff_ack,
    describe,
    encode,
    encode_alarm,
    request_of,
)
from gateway.config import GatewayConfig
from gateway.notify import Notifier, audit_point
from gateway.points import rejected_point

__all__ = ["BOOK_KEY", "NO_PUBLICATIONS", "Alarming", "Lost", "Publication", "Publications"]

log = logging.getLogger(__name__)

BOOK_KEY: Final = "#alarm-book"  # the state file's key of the alarm book ('#' is never in a crate id)
_TICK_S: Final = 0.25
_WRITE_RETRY_S: Final = 5.0  # the worker must not block on an absent InfluxDB every tick

# (crate, first_seq, last_seq, ts): seqs a crate says it dropped for good (an edge ``gap`` event)
Lost = tuple[str, int, int, int]
# (topic, payload, retain): a message for the caller to publish at QoS 1
Publication = tuple[str, bytes, bool]
# what judging one message asks to publish: most ask nothing, and get this one shared empty tuple
Publications = Sequence[Publication]
NO_PUBLICATIONS: Final[tuple[Publication, ...]] = ()


class Alarming:
    """Owns the alarm engine and the notifier; turns their events into publications, points and notifications."""

    def __init__(
        self,
        config: GatewayConfig,
        notifier: Notifier | None = None,
        *,
        publish: Callable[[str, bytes, bool], object] | None = None,
        write: Callable[[list[str]], None] | None = None,
    ) -> None:
        """``notifier``: the started channels (none without); ``publish`` and ``write``: where the alarms of
        ``tick`` go, since no batch is open then (without them they are only kept in the engine)."""
        areas = {}
        for crate in config.shipments:
            record = config.shipment_of(crate)
            if record is not None:
                areas[crate] = (record.origin_area, record.destination_area)
        self.engine = AlarmEngine(
            config.profiles, config.default_profile, config.crate_profiles, config.alarm_policy, config.shipments,
            areas=areas,
        )  # fmt: skip
        self.notifier = notifier if notifier is not None else Notifier(())
        # crate -> origin, destination, product of its shipment's record: built once, an alarm only looks it up
        self.shipments: dict[str, dict[str, str]] = {}
        for crate in config.shipments:
            record = config.shipment_of(crate)
            if record is not None and record.details:
                self.shipments[crate] = record.details
        self._future_ms = int(config.future_tolerance_s * 1000)
        self.rejects: Counter[str] = Counter()  # refused staff acks (the ingest counts the other rejects)
        self.events = 0
        self.acks = 0
        self.book_changed = False  # since the last snapshot: save the book with the next batch
        self._publish = publish
        self._write = write
        self._tick_lines: list[str] = []
        self._next_tick = 0.0
        self._next_write = 0.0

    # --- inputs ---------------------------------------------------------------------------------

    def telemetry(self, telemetry: Telemetry, arrival_ms: int, lines: list[str]) -> Publications:
        """Judge a new (neither duplicate nor late gap-filling) telemetry message; its alarms to publish.

        The first ``powered_on`` of a shipment (the crate's probe board was switched on) starts the
        profile's start delay: readings within it raise no value alarm while the probes settle. A later
        one (the board rebooted mid-shipment, e.g. a brown-out) does not: its probes are in place, and
        silencing them for the delay could hide an excursion under way.
        """
        crate = telemetry.crate
        if telemetry.profile is not None:
            self.engine.adopt_profile(crate, telemetry.profile)  # a status or lid event may have come first
        if telemetry.powered_on is not None:
            self.engine.powered_on(crate, telemetry.profile, telemetry.powered_on)
        events = self.engine.telemetry(telemetry, arrival_ms)
        return self._emit(events, lines) if events else NO_PUBLICATIONS

    def watches(self, crate: str) -> bool:
        """True when the crate has rule state, saved with its own state."""
        return self.engine.watches(crate)

    def forget(self, crate: str) -> bool:
        """Forget an idle crate's rule state and cleared alarms; False while it has an open alarm."""
        if not self.engine.forget(crate):
            return False
        self.book_changed = True  # the book without its cleared alarms is saved next
        return True

    def restart(self, crate: str) -> None:
        """The crate numbers its messages afresh (new device or shipment): fresh rule state for it."""
        self.engine.restart(crate)

    def route(
        self, where: Route, topic: str, payload: bytes, lines: list[str], now_ms: int
    ) -> tuple[Publications, Lost | None]:
        """A status, event or staff ack delivery on ``topic`` (parsed: ``where``): what to publish, and the seqs
        a crate declares lost, if it did.

        Raises WireFormatError for a payload that cannot be read, or any message on the crate
        topics of a reserved login (``reserved_crate``; the caller rejects it).
        """
        if where.kind == STAFF_ACK:
            return self._staff_ack(where, topic, payload, lines, now_ms), None
        if where.kind not in CRATE_KINDS or not valid_identifier(where.crate):
            raise WireFormatError("topic", f"no crate message is expected on {topic[:200]!r}")
        crate, kind = where.crate, where.kind
        refuse_reserved_crate(crate)  # the broker lets every login, staff too, write its own crate topics
        if not payload and kind == STATUS:
            return NO_PUBLICATIONS, None  # someone deleted the retained status: nothing was said
        if kind == STATUS:
            status = decode_crate_status(payload, crate)
            # arrival time: a last will's own ts is when it was registered, not when the crate vanished
            return self._emit(self.engine.status(crate, status.state == ONLINE, now_ms), lines), None
        event = decode_event(payload, crate, now_ms, self._future_ms)
        if event.event in (LID_OPEN, LID_CLOSED):
            return self._emit(self.engine.lid(crate, event.event == LID_OPEN, event.ts, now_ms), lines), None
        if event.event == GAP:
            first, last = event.lost
            reason = describe(event.detail.get("reason"))
            log.warning("crate %s says seqs %d..%d are lost (%s)", crate, first, last, reason)
            return NO_PUBLICATIONS, (crate, first, last, event.ts)
        if event.event in POSITION_EVENTS:  # where the crate is and how it stands: stored
            lines.append(position_point(crate, event.event, event.detail, event.ts))  # checks the fields first
            if event.event == "orientation":
                tilt_deg = float(event.detail["tilt_deg"])
                return self._emit(self.engine.orientation(crate, tilt_deg, event.ts, now_ms), lines), None
            if event.event == "shock":
                shock_g, tilt_deg = float(event.detail["shock_g"]), float(event.detail["tilt_deg"])
                return self._emit(self.engine.shock(crate, shock_g, tilt_deg, event.ts, now_ms), lines), None
            if event.event == "position":  # its phase (origin, transit, destination) follows the latest fix
                fix = Position(float(event.detail["lat"]), float(event.detail["lon"]))
                return self._emit(self.engine.position(crate, fix, event.ts, now_ms), lines), None
            return NO_PUBLICATIONS, None
        return NO_PUBLICATIONS, None  # the crate's own excursion, stuck-value, clock events: stored nowhere

    def _staff_ack(self, where: Route, topic: str, payload: bytes, lines: list[str], now_ms: int) -> Publications:
        ack = decode_staff_ack(payload, where.ids)
        if ack.ts > now_ms + self._future_ms:  # the person's clock dates the acknowledged point
            raise WireFormatError("future_ts", f"ts {ack.ts} is {(ack.ts - now_ms) / 1000:.0f} s in the future")
        try:
            event = self.engine.acknowledge(ack)
        except AckRejectedError as exc:
            self.rejects["ack_rejected"] += 1
            detail = f"acknowledgement by {ack.by!r} refused: {exc.reason}"
            log.warning("%s (%s)", detail, topic)
            refusal = self.reject(
                "ack_rejected", ack.crate, detail, topic=topic, payload=payload, lines=lines, now_ms=now_ms
            )
            return (refusal,)
        self.acks += 1
        log.info("alarm %s acknowledged by %s: %s", event.alarm.alarm_id, ack.by, ack.note)
        return self._emit([event], lines)

    def reject(
        self, reason: str, crate: str | None, detail: str, *, topic: str, payload: bytes, lines: list[str], now_ms: int
    ) -> Publication:
        """Record a refused message: measurement ``rejected`` into ``lines``; its ``coldchain/v1/rejected``."""
        lines.append(rejected_point(reason, crate, detail=detail, topic=topic, payload=payload, now_ms=now_ms))
        # a staff ack's own id goes back with its refusal, so its sender can tell it
        request = request_of(payload) if topic.startswith(f"{ROOT}/acks/") else None
        refusal = Rejected(reason, detail, now_ms, payload[:256].decode("utf-8", "replace"), topic, crate, request)
        return rejected_topic(), encode(refusal), False

    # --- outputs --------------------------------------------------------------------------------

    def _emit(self, events: list[AlarmChange], lines: list[str]) -> list[Publication]:
        publications: list[Publication] = []
        for event in events:
            alarm = event.alarm
            details = self.shipments.get(alarm.crate)
            payload = encode_alarm(alarm, details)
            publications.append((alarm_topic(alarm.crate, alarm.rule, alarm.sensor), payload, True))
            lines.append(audit_point(event))
            # durable before the message behind it is acknowledged: a crash re-raises it, the outbox de-duplicates
            self.notifier.publish(event, details)
            self.events += 1
            self.book_changed = True
        return publications

    def tick(self, now: float, wall_ms: int, deaf: bool = False) -> None:
        """Wall-clock rules, at most every 0.25 s (``now`` monotonic): publish at once, write on our own.

        ``deaf``: the broker sends us nothing now because we hold its window (InfluxDB away or slow).
        """
        if now < self._next_tick:
            return
        self._next_tick = now + _TICK_S
        if deaf:
            # no reading can reach us: that silence must not raise stale data on every crate
            self.engine.excuse_silence(wall_ms)
        events = self.engine.tick(wall_ms)
        if events:
            for topic, payload, retain in self._emit(events, self._tick_lines):
                if self._publish is not None:
                    self._publish(topic, payload, retain)
        if self._tick_lines and self._write is not None and now >= self._next_write:
            try:
                self._write(self._tick_lines)
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
        return self.engine.monitor_state(crate)

    def book_snapshot(self) -> dict[str, Any] | None:
        """The alarm book when it changed since the last call (None: nothing to save)."""
        if not self.book_changed:
            return None
        self.book_changed = False
        return self.engine.book.to_dict()

    def crate_book(self, crate: str) -> dict[str, Any]:
        """``crate``'s part of the alarm book, saved with the crate's own state where state is kept per crate."""
        return self.engine.book.crate_dict(crate)

    def adopt(self, crate: str, saved: dict[str, Any], wall_ms: int) -> None:
        """Take ``crate`` over from the gateway that served it: its rule state and its part of the book."""
        self.engine.adopt(crate, saved.get("alarms"), saved.get("book") or AlarmBook().crate_dict(crate), wall_ms)

    def drop(self, crate: str) -> None:
        """Forget ``crate``'s rule state and alarms: another gateway serves it now (and raises its clock alarms)."""
        self.engine.drop(crate)

    def restore(self, saved: dict[str, dict[str, Any]], wall_ms: int) -> None:
        """Resume from the state file's entries: the book under ``BOOK_KEY``, monitors under ``alarms``."""
        monitors = {c: s["alarms"] for c, s in saved.items() if c != BOOK_KEY and s.get("alarms")}
        book = saved.get(BOOK_KEY) or AlarmBook().to_dict()
        self.engine.restore({"book": book, "monitors": monitors}, now_ms=wall_ms)
        active = len(self.engine.book.open_alarms())
        log.info("resumed alarm state: %d crates, %d open alarms", len(monitors), active)
