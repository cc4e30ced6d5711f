"""The forwarder: what goes from the spool to the broker, in what order, and when it may leave.

Telemetry leaves the spool only on the gateway's ``stored_through``; until then it is
published in seq order, at most ``mqtt.window`` messages awaiting PUBACK, and published
again when the gateway stays silent past ``spool.ack_timeout_s``. A publish the broker
refuses (MQTT v5 reason code >= 0x80) is not counted as delivered and is retried.
Events leave on PUBACK (the gateway acknowledges no event seq).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from coldchain.topics import events_topic, status_topic, telemetry_topic
from coldchain.wire import CrateStatus, encode, signed
from edge.clock import Clock
from edge.config import AgentConfig
from edge.events import Published
from edge.mqtt_link import MqttLink
from edge.spool import Dropped, Spool

__all__ = ["Forwarder"]

log = logging.getLogger(__name__)

SEQ_LIMIT: Final = 2**63  # seqs are below it (the wire contract; SQLite's INTEGER ends there too)
# Seqs a crate must still have above a stored_through it continues from (a renumbering): 2^40 is
# 35,000 years of one message a second. A stored_through closer to the limit is no gateway's.
SEQ_ROOM: Final = 2**40


def _with_held_from(payload: bytes, held_from: int) -> bytes:
    """The spooled payload with the spool's low-water mark as it leaves (wire field ``held_from``).

    Stamped at publish time, not when spooled: by then acks have pruned the spool further, and a
    stale, lower mark would have a gateway without state wait for seqs the crate no longer holds.
    A spooled payload is a compact JSON object without the field, so it goes in before the closing
    brace: no parsing per reading on the Pi.
    """
    return b'%s,"held_from":%d}' % (payload[:-1], held_from)


class Forwarder:
    """Publishing state of one crate; driven by the agent loop only."""

    def __init__(
        self,
        config: AgentConfig,
        spool: Spool,
        link: MqttLink,
        clock: Clock,
        add_event: Callable[[str, int, dict[str, Any]], None],
    ) -> None:
        self.crate = config.crate
        self.mqtt = config.mqtt
        self.ack_timeout_s = config.spool.ack_timeout_s
        self.spool = spool
        self.link = link
        self.clock = clock
        self._add_event = add_event
        self._topic = telemetry_topic(self.crate)
        self.signing_key = config.signing_key
        self.connected = False
        self.published = 0
        self.refused = 0
        self.absurd_acks = 0  # stored_through values outside any seq: ignored, logged
        # mid -> ("t", seq) for telemetry, ("e", event id) for events, ("s", 0) for status
        self._inflight: dict[int, tuple[str, int]] = {}
        self._sent_through = spool.low_water - 1
        self._events_sent_through = 0
        self._acked_through = -1
        self._waiting_since: int | None = None  # mono ms since unacknowledged messages exist
        self._retry_at: int | None = None  # mono ms when refused publishes are tried again
        self.hold_from: int | None = None  # telemetry from this seq on waits (for its board's switch-on time)

    def awaiting_ack(self) -> bool:
        """True while telemetry handed to the broker waits for the gateway's stored_through."""
        first = self.spool.first_seq()
        return first is not None and first <= self._sent_through

    def on_connected(self) -> None:
        """The broker accepted us: listen for acks, say online, publish again."""
        self.connected = True
        log.info("connected to broker %s", self.link.broker)
        self.link.subscribe_acks()
        online = encode(CrateStatus(self.crate, "online", self.clock.wall_ms()))
        mid = self.link.publish(status_topic(self.crate), online, retain=True)
        if mid is not None:
            self._inflight[mid] = ("s", 0)

    def on_disconnected(self, reason: str) -> None:
        """The broker is gone: keep spooling."""
        if self.connected:
            log.warning("broker connection lost (%s); spooling", reason)
        self.connected = False

    def say_offline(self) -> None:
        """Publish the retained offline status (before a clean disconnect)."""
        # a clean disconnect suppresses the last will, so say it ourselves
        if self.connected:
            payload = encode(CrateStatus(self.crate, "offline", self.clock.wall_ms()))
            self.link.publish(status_topic(self.crate), payload, retain=True)

    def on_published(self, event: Published) -> None:
        """The broker answered a publish: count it, forget a sent event, or schedule a retry."""
        kind, key = self._inflight.pop(event.mid, ("?", 0))
        if event.reason_code >= 0x80:
            self.refused += 1
            log.error("broker refused publish (%s, mid %d, %s %d); will retry", event.reason, event.mid, kind, key)
            self._retry_at = self.clock.mono_ms() + int(self.mqtt.refused_retry_s * 1000)
            if kind == "t":
                self._sent_through = min(self._sent_through, key - 1)
            elif kind == "e":
                self._events_sent_through = min(self._events_sent_through, key - 1)
            return
        if kind == "e":
            self.spool.remove_event(key)
        elif kind == "t":
            self.published += 1

    def on_storage_ack(self, stored_through: int) -> None:
        """The gateway stored every seq up to ``stored_through``: prune, and notice seqs nobody has.

        -1 says nothing is stored yet (seq 0 missing); a value below that, or so high that no seq
        could follow it, is no promise about anything this crate holds: logged, nothing pruned.
        """
        if not -1 <= stored_through < SEQ_LIMIT - SEQ_ROOM:
            self.absurd_acks += 1
            log.error(
                "ignored storage ack #%d: stored_through %s is outside every seq (-1..2^63-2^40); nothing pruned",
                self.absurd_acks,
                stored_through if abs(stored_through) < 10**30 else f"of {len(str(stored_through))} digits",
            )
            return
        if stored_through >= self.spool.next_seq:
            self._seq_went_back(stored_through)
            return
        if stored_through <= self._acked_through:
            return
        self._acked_through = stored_through
        removed = self.spool.prune(stored_through)
        self._waiting_since = self.clock.mono_ms()
        log.debug("gateway stored through seq %d; pruned %d", stored_through, removed)
        oldest = self.spool.low_water
        if stored_through < oldest - 1:
            # The gateway waits for seqs this crate no longer has (dropped when the spool was
            # full, or lost with a corrupt spool): say so, or its stored_through never moves on.
            log.error("gateway waits for seq %d..%d, which are not in the spool", stored_through + 1, oldest - 1)
            self._add_event(
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
        self._sent_through = self.spool.low_water - 1
        self._acked_through = stored_through
        self._add_event("seq_reset", self.clock.wall_ms(), {"stored_through": stored_through, "shift": shift})

    def announce_gap(self, dropped: Dropped) -> None:
        """The spool bound forced readings out: log it, skip them, and tell the gateway."""
        log.error(
            "spool full (%d rows): dropped the oldest %d reading(s), seq %d..%d",
            self.spool.max_rows,
            dropped.count,
            dropped.first_seq,
            dropped.last_seq,
        )
        self._sent_through = max(self._sent_through, dropped.last_seq)
        self._add_event(
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

    def check_ack_timeout(self) -> None:
        """Publish again what the gateway has not confirmed within the ack timeout."""
        first = self.spool.first_seq()
        now = self.clock.mono_ms()
        if first is None or first > self._sent_through:
            self._waiting_since = None
            return
        if self._waiting_since is None:
            self._waiting_since = now
            return
        if 0 <= self._acked_through < first - 1:
            # the gateway waits for seqs we do not have (announced by a gap event): sending
            # the whole spool again cannot fill that hole, it would only flood the broker
            return
        if self.connected and now - self._waiting_since > self.ack_timeout_s * 1000:
            log.warning(
                "gateway has not confirmed seq %d..%d within %.0f s; publishing them again",
                first,
                self._sent_through,
                self.ack_timeout_s,
            )
            self._sent_through = first - 1
            self._waiting_since = now

    def _signed(self, payload: bytes) -> bytes:
        """The payload with the crate's signature, made as it leaves: restamping or renumbering
        in the spool can never leave a stale signature behind."""
        if self.signing_key is None:
            return payload
        return signed(payload, self.signing_key)

    def pump(self) -> None:
        """Hand the next spooled messages to the broker, oldest first, within the window."""
        if not self.connected:
            return
        if self._retry_at is not None:
            if self.clock.mono_ms() < self._retry_at:
                return
            self._retry_at = None
        room = self.mqtt.window - len(self._inflight)
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
        held_from = self.spool.low_water
        for seq, payload in self.spool.pending(self._sent_through, room):
            if self.hold_from is not None and seq >= self.hold_from:
                return
            mid = self.link.publish(self._topic, self._signed(_with_held_from(payload, held_from)))
            if mid is None:
                return
            self._inflight[mid] = ("t", seq)
            self._sent_through = seq
