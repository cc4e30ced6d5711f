"""From one MQTT delivery to points, alarms and rejects: validation, de-duplication, gaps, alarm inputs.

No I/O here: ``Ingest.handle`` appends line protocol to the open batch the caller
passes and returns the messages to publish; the worker writes, publishes and
acknowledges. (Two exceptions, injected at start-up: alarm notifications are queued
in their durable outboxes at once, and crate signing keys are read from their files once.)
All per-crate state is keyed by crate, so gateways sharing a fleet by crate
(``$share`` with sticky dispatch) never need each other's state.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from coldchain.errors import WireFormatError
from coldchain.profiles import Profile
from coldchain.record.lineprotocol import reading_line
from coldchain.topics import TELEMETRY, Route, parse_topic, reserved_login, valid_identifier
from coldchain.wire import FUTURE_TOLERANCE_MS, Telemetry, decode_telemetry, salvage_telemetry
from gateway.alarming import BOOK_KEY, NO_PUBLICATIONS, Alarming, Publications
from gateway.authenticity import Authenticity
from gateway.config import GatewayConfig
from gateway.mqtt_link import Delivery
from gateway.points import fault_line, gap_point, shipment_point, temperature_series, time_flagged
from gateway.sequence import DUPLICATE, LATE, RESTART, SeqTracker

__all__ = ["Batch", "CrateState", "Ingest"]

log = logging.getLogger(__name__)


class CrateState:
    """Everything the gateway remembers about one crate."""

    __slots__ = ("acked_at", "acked_through", "crate", "last_ts", "profile", "seen_ms", "seqs", "series", "shipment")

    def __init__(self, crate: str, profile: Profile, shipment: str | None = None) -> None:
        self.crate = crate
        self.profile = profile
        self.shipment = shipment  # [crates] shipment: a tag of its readings (release reports select by it)
        self.seqs = SeqTracker()
        self.series: dict[str, str] = {}
        self.last_ts = 0  # newest reading fed to the alarm engine: late ones are stored, not re-judged
        self.acked_through: int | None = None  # last stored_through published
        self.acked_at = 0.0
        self.seen_ms = 0  # arrival time of its latest message: a crate long silent is forgotten

    def series_of(self, sensor: str) -> str:
        """The cached ``temperature`` series key of ``sensor``."""
        series = self.series.get(sensor)
        if series is None:
            series = self.series[sensor] = temperature_series(self.crate, self.profile.name, sensor, self.shipment)
        return series

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state for the state file."""
        return {
            "profile": self.profile.name,
            "seqs": self.seqs.snapshot(),
            "last_ts": self.last_ts,
            "seen": self.seen_ms,
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Resume from ``snapshot()`` (the alarm engine restores its own part, ``alarms``)."""
        self.seqs.restore(snapshot["seqs"])
        self.last_ts = int(snapshot["last_ts"])
        self.seen_ms = int(snapshot.get("seen", self.seen_ms))  # state files of before 'seen': from now

    def heard(self, now_ms: int) -> None:
        """A message of the crate arrived at ``now_ms``: it is not idle."""
        self.seen_ms = now_ms

    def advance(self, ts: int) -> bool:
        """Make ``ts`` the newest reading judged; False when an earlier judged one is newer (stored, not judged)."""
        if ts < self.last_ts:
            return False
        self.last_ts = ts
        return True

    def renumbered(self) -> None:
        """The crate numbers its messages afresh: whatever it sends next is judged."""
        self.last_ts = 0

    def ack_again(self) -> None:
        """The crate re-sent a message: it missed our storage ack, so the next one goes out even if unchanged."""
        self.acked_through = None

    def storage_acked(self, through: int, at: float) -> None:
        """``stored_through`` ``through`` was published at monotonic time ``at``."""
        self.acked_through = through
        self.acked_at = at

    def switch_profile(self, profile: Profile) -> None:
        """A crate now carries another product: new series tags."""
        self.profile = profile
        self.series.clear()


@dataclass(slots=True)
class Batch:
    """What is waiting for one InfluxDB write, and the deliveries to acknowledge after it."""

    lines: list[str] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    crates: set[str] = field(default_factory=set)  # whose stored_through may move after the write
    started: float = 0.0  # monotonic time of the first delivery
    archived: list[tuple[str, str, int]] = field(default_factory=list)  # (topic, payload, arrival ms) accepted
    # taken when the batch is closed, so they describe exactly the messages up to this batch
    snapshots: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    through: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.deliveries)

    def begin(self, now: float) -> None:
        """Its first delivery arrived at monotonic time ``now``: its linger counts from here."""
        self.started = now


def _failure_site(exc: BaseException) -> tuple[str, str, int]:
    """Exception type, file and line where ``exc`` was raised: one cause, however many messages meet it."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return type(exc).__name__, "", 0
    return type(exc).__name__, tb.tb_frame.f_code.co_filename, tb.tb_lineno


class Ingest:
    """Turns deliveries into a batch and messages to publish; keeps per-crate state and counters."""

    def __init__(
        self,
        config: GatewayConfig,
        alarming: Alarming | None = None,
        authenticity: Authenticity | None = None,
        archiving: bool = False,
        crate_books: bool = False,
    ) -> None:
        """``alarming``: the alarm engine's side (one without notification channels when not given);
        ``authenticity``: given when ``[security] keys_dir`` is, signatures are checked; ``archiving``:
        accepted raw messages are kept in the batch, for the evidence archive; ``crate_books``: state is
        kept per crate (the cluster's key-value bucket), each snapshot carrying the crate's part of the
        alarm book instead of one snapshot of the whole book."""
        self.config = config
        self.profiles = config.profiles
        self.crates: dict[str, CrateState] = {}
        self.records: list[str] = []  # shipment points of crates first seen since the last batch closed
        self.rejects: Counter[str] = Counter()
        self.received = 0
        self.readings = 0
        self.duplicates = 0
        self.restarts = 0
        self.late = 0
        self.alarming = alarming if alarming is not None else Alarming(config)  # every rule, the lifecycle
        self.authenticity = authenticity
        self.archiving = archiving
        self.crate_books = crate_books
        # the decoder allows FUTURE_TOLERANCE_MS; shifting its 'now' applies the configured tolerance instead
        self._future_ms = int(config.future_tolerance_s * 1000)
        self._clock_shift = self._future_ms - FUTURE_TOLERANCE_MS
        self._failures: set[tuple[str, str, int]] = set()  # causes of internal rejects whose traceback is logged

    @property
    def alarms(self) -> int:
        """Alarm events raised: every change (active, acknowledged, cleared, escalated)."""
        return self.alarming.events

    def rejected(self) -> Counter[str]:
        """Messages refused so far, by reason (refused staff acks included)."""
        return self.rejects + self.alarming.rejects

    def _profile_for(self, crate: str, claimed: str | None) -> Profile:
        name = self.config.crate_profiles.get(crate)
        if name is None:
            name = claimed if claimed in self.profiles else self.config.default_profile
        return self.profiles[name]

    def state_of(self, crate: str, claimed_profile: str | None = None, *, now_ms: int) -> CrateState:
        """The crate's state, created on first sight (when its shipment's record is written, dated ``now_ms``)."""
        state = self.crates.get(crate)
        if state is None:
            profile = self._profile_for(crate, claimed_profile)
            state = self.crates[crate] = CrateState(crate, profile, self.config.shipments.get(crate))
            details = self.alarming.shipments.get(crate)  # the record's fields, looked up once at start-up
            if details is not None:
                self.records.append(shipment_point(self.config.shipments[crate], crate, details, now_ms))
        return state

    def restore(self, snapshots: dict[str, dict[str, Any]], now_ms: int) -> None:
        """Resume every crate of a state file (profiles re-resolved from the current configuration)."""
        for crate, snapshot in snapshots.items():
            state = self.state_of(crate, snapshot.get("profile"), now_ms=now_ms)
            state.heard(now_ms)
            state.restore(snapshot)

    def adopt(self, crate: str, saved: dict[str, Any], now_ms: int) -> None:
        """Take ``crate`` over from the gateway that served it, from the snapshot it saved (``close``).

        A snapshot that cannot be read raises, with the crate forgotten:
        it starts afresh, as a new shipment would.
        """
        self.crates.pop(crate, None)
        try:
            state = self.state_of(crate, saved.get("profile"), now_ms=now_ms)
            state.heard(now_ms)
            state.restore(saved)
            self.alarming.adopt(crate, saved, now_ms)
        except Exception:
            self.drop(crate)
            raise

    def drop(self, crate: str) -> None:
        """Forget ``crate`` at once, open alarms too: another gateway serves it now."""
        self.crates.pop(crate, None)
        self.alarming.drop(crate)

    def forget_idle(self, now_ms: int, silent_ms: int) -> list[str]:
        """Forget the crates silent for ``silent_ms`` that have no open alarm; their ids.

        Memory then follows the fleet in service, not every crate ever seen. A forgotten crate that
        speaks again starts afresh, as a new shipment would.
        """
        cutoff = now_ms - silent_ms
        forget = self.alarming.forget
        gone = [c for c, state in self.crates.items() if state.seen_ms < cutoff and forget(c)]
        for crate in gone:
            del self.crates[crate]
        return gone

    def close(self, batch: Batch, with_snapshots: bool) -> None:
        """Record in ``batch`` what its crates' state is once it is stored: stored_through and snapshots.

        The shipment records of crates first seen since the last batch go with it.
        """
        if self.records:
            batch.lines.extend(self.records)
            self.records = []
        for crate in batch.crates:
            state = self.crates.get(crate)
            if state is None:
                continue  # dropped since (another gateway serves it now): its messages are not acknowledged
            through = state.seqs.stored_through
            if through is not None:
                batch.through[crate] = through
            if with_snapshots:
                snapshot = state.snapshot()
                snapshot["alarms"] = self.alarming.monitor_snapshot(crate)
                if self.crate_books:
                    snapshot["book"] = self.alarming.crate_book(crate)
                batch.snapshots.append((crate, snapshot))
        book = self.alarming.book_snapshot() if with_snapshots and not self.crate_books else None
        if book is not None:
            batch.snapshots.append((BOOK_KEY, book))

    def handle(self, delivery: Delivery, batch: Batch, now_ms: int) -> Publications:
        """Validate one delivery and account for it in ``batch``; what to publish for it. Never raises.

        Each message is judged in isolation: should judging it fail in a way nobody foresaw, what it
        had added to the batch is taken back, nothing it meant to publish is returned, and it is
        rejected as ``internal`` (recorded and acknowledged like any reject), so one message can never
        stop the gateway nor, redelivered after a restart, stop it again.
        """
        self.received += 1
        batch.deliveries.append(delivery)
        topic, payload = delivery[0], delivery[1]
        lines, archived = len(batch.lines), len(batch.archived)
        try:
            return self._judge(topic, payload, batch, now_ms)
        except Exception as exc:  # the isolation itself: any failure becomes this message's reject
            del batch.lines[lines:], batch.archived[archived:]
            return self._internal(exc, topic, payload, batch, now_ms)

    def _judge(self, topic: str, payload: bytes, batch: Batch, now_ms: int) -> Publications:
        route = parse_topic(topic)
        if route.kind != TELEMETRY or reserved_login(route.crate):
            return self._other(route, topic, payload, batch, now_ms)  # which refuses a reserved login's telemetry too
        try:
            telemetry = decode_telemetry(payload, route.crate, now_ms + self._clock_shift)
            if self.authenticity is not None:
                self.authenticity.check(telemetry.crate, payload)
        except WireFormatError as exc:
            return self._reject(exc, topic, payload, batch, now_ms)
        crate = telemetry.crate
        state = self.crates.get(crate)
        if state is None:
            state = self.state_of(crate, telemetry.profile, now_ms=now_ms)
        elif telemetry.profile is not None and crate not in self.config.crate_profiles:
            profile = self._profile_for(crate, telemetry.profile)
            if profile is not state.profile:
                state.switch_profile(profile)
        state.heard(now_ms)
        verdict, gap = state.seqs.accept(telemetry.seq, telemetry.ts, telemetry.held_from)
        if verdict == RESTART:
            self._restart(state, telemetry, batch)
        elif (settled := state.seqs.settle(telemetry.held_from)) is not None and settled is not gap:
            batch.lines.append(gap_point(crate, settled))
        if verdict == DUPLICATE:
            # a crate re-sends when it missed our storage ack: make sure it hears it again
            self.duplicates += 1
            state.ack_again()
            batch.crates.add(crate)
            return NO_PUBLICATIONS
        batch.crates.add(crate)
        if self.archiving:
            batch.archived.append((topic, payload.decode(), now_ms))
        lines = batch.lines
        if gap is not None:
            lines.append(gap_point(crate, gap))
            for abandoned in state.seqs.abandoned():
                lines.append(gap_point(crate, abandoned))
        seq, ts = telemetry.seq, telemetry.ts
        for reading in telemetry.readings:
            if reading.value_c is None:
                lines.append(fault_line(state.series_of(reading.sensor), reading.fault or "", seq, ts))
            else:
                lines.append(reading_line(state.series_of(reading.sensor), reading.value_c, seq, ts))
        if telemetry.ts_flag is not None:  # taken while the crate's clock was unset: the record must say so
            last = -len(telemetry.readings)  # the lines just built, one per reading (a message has at least one)
            lines[last:] = [time_flagged(line, telemetry.ts_flag) for line in lines[last:]]
        self.readings += len(telemetry.readings)
        if verdict == LATE:
            self.late += 1
        elif state.advance(ts):
            return self.alarming.telemetry(telemetry, now_ms, lines)
        return NO_PUBLICATIONS

    def _other(self, route: Route, topic: str, payload: bytes, batch: Batch, now_ms: int) -> Publications:
        """Crate status and events, staff acks: alarm inputs. A crate's gap event settles the seqs it lost."""
        try:
            publications, lost = self.alarming.route(route, topic, payload, batch.lines, now_ms)
        except WireFormatError as exc:
            return self._reject(exc, topic, payload, batch, now_ms)
        if lost is not None:
            crate, first, last, ts = lost
            state = self.state_of(crate, now_ms=now_ms)
            state.heard(now_ms)
            for gap in state.seqs.lose(first, last, ts):
                batch.lines.append(gap_point(crate, gap))
            batch.crates.add(crate)  # stored_through may move past what the crate dropped
            return publications
        topic_crate = route.own_crate
        if topic_crate is not None and self.alarming.watches(topic_crate):
            self.state_of(topic_crate, now_ms=now_ms).heard(now_ms)
            batch.crates.add(topic_crate)  # its rule state is saved with the batch
        return publications

    def _restart(self, state: CrateState, telemetry: Telemetry, batch: Batch) -> None:
        self.restarts += 1
        log.warning(
            "crate %s numbers from seq %d again (had reached %s, ts %d is newer): fresh sequence and alarm state",
            state.crate,
            telemetry.seq,
            state.seqs.highest,
            telemetry.ts,
        )
        for gap in state.seqs.restart(telemetry.seq, telemetry.ts, telemetry.held_from):
            batch.lines.append(gap_point(state.crate, gap))
        self.alarming.restart(state.crate)
        state.renumbered()

    def _reject(self, exc: WireFormatError, topic: str, payload: bytes, batch: Batch, now_ms: int) -> Publications:
        """Count, log and record a refused message; a refused reading whose crate and seq can be read is handled.

        Returns the ``coldchain/v1/rejected`` message to publish.
        """
        reason, detail = exc.reason, exc.detail
        self.rejects[reason] += 1
        route = parse_topic(topic)
        topic_crate = route.own_crate
        crate, seq, ts, held_from = None, None, None, None
        if route.kind == TELEMETRY and not reserved_login(route.crate):
            crate, seq, ts, held_from = salvage_telemetry(payload)  # only telemetry carries a crate's seqs
        if crate is not None and crate != topic_crate:
            crate, seq = None, None  # a payload naming another crate must not move that crate's accounting
        trusted = self.authenticity is None or (crate is not None and self.authenticity.vouches(crate, payload))
        if crate is not None and seq is not None and trusted:
            # definitively rejected counts as handled: the crate may prune it and no gap is reported
            # (where signatures are checked, only if the crate signed it: a forgery must not settle a seq)
            state = self.state_of(crate, now_ms=now_ms)
            if ts is None or ts > now_ms + self._future_ms:
                # a bad clock must not move the crate's notion of "newest", nor date a gap point
                ts = state.seqs.newest_ts
            verdict, gap = state.seqs.accept(seq, ts, held_from)
            if gap is not None:
                batch.lines.append(gap_point(crate, gap))
            if verdict != RESTART:
                batch.crates.add(crate)
        crate = crate or (topic_crate if topic_crate and valid_identifier(topic_crate) else None)
        count = sum(self.rejected().values())
        log.warning("rejected message #%d on %r (%s): %s", count, topic[:200], reason, detail[:500])
        return (
            self.alarming.reject(reason, crate, detail, topic=topic, payload=payload, lines=batch.lines, now_ms=now_ms),
        )

    def _internal(self, exc: Exception, topic: str, payload: bytes, batch: Batch, now_ms: int) -> Publications:
        """Reject a message whose judging failed unexpectedly: reason ``internal``, the exception's type in the detail.

        The traceback is logged the first time a cause (exception type and place) is met, a line after that:
        a flood of one hostile message must not flood the log.
        """
        site = _failure_site(exc)
        if site in self._failures:
            log.error("judging a message on %r failed again at %s (%s): rejected", topic[:200], site, exc)
        else:
            self._failures.add(site)
            log.error("judging a message on %r failed unexpectedly: rejected as internal", topic[:200], exc_info=exc)
        detail = f"{type(exc).__name__} while judging the message: {exc}"
        try:
            return self._reject(WireFormatError("internal", detail[:500]), topic, payload, batch, now_ms)
        except Exception:  # recording the failure failed too: the log is all that is left
            log.exception("cannot record the internal reject of a message on %r", topic[:200])
            return NO_PUBLICATIONS
