"""The cluster demo's script: a gateway SIGKILLed part-way, and what the hand-over did.

At ``KILL_AT_S`` (simulated seconds after C-0003's first reading, while it warms towards its
excursion) the gateway holding C-0003's partition is SIGKILLed (``Fleet.kill``). The script
measures the time until a storage ack says one of its crates is stored again (the other
gateway took its partitions over), says which partitions moved, then waits until every
crate's storage ack reaches the highest seq it had published by then, and counts in InfluxDB
that each reading up to there was stored exactly once, with no gap left open. A scripted
staff member acknowledges C-0003's critical alarm over MQTT 3.1.1, as
``coldchain ack --protocol 3.1.1`` does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cli.demo_setup import CRATES, STORY_CRATE
from cli.demo_story import ACK_BY, ScriptedAck
from cli.demo_view import DemoView
from cli.mqtt_read import BrokerSettings
from cli.services import InfluxDB, ServiceError
from coldchain.errors import WireFormatError
from coldchain.topics import ROOT, TELEMETRY, parse_topic
from coldchain.wire import decode_storage_ack, decode_telemetry

__all__ = ["ACKS", "KILL_AT_S", "Fleet", "Handover", "StoredCount", "stored_counts"]

ACKS = f"{ROOT}/crates/+/ack"
KILL_AT_S = 30.0  # C-0003 is at about -166 °C then: its warning comes during the hand-over
CATCH_UP_LIMIT_S = 60.0  # real seconds: a hand-over not done by then is reported as not done


class Fleet(Protocol):
    """The gateways, as the script needs them."""

    def kill(self) -> tuple[str, set[str]]:
        """SIGKILL the gateway serving the story crate: what to tell, and the crates it served."""

    def moves(self) -> str:
        """Which partitions the killed gateway held and who holds them now."""


@dataclass(frozen=True)
class StoredCount:
    """What InfluxDB holds of one crate's readings."""

    crate: str
    points: int
    distinct: int
    first: int
    last: int
    open_gaps: int

    @property
    def exactly_once(self) -> bool:
        """Every seq from the first to the last, each once, and no gap still open (or lost)."""
        return self.points == self.distinct == self.last - self.first + 1 and self.open_gaps == 0


def stored_counts(influx: InfluxDB, through: dict[str, int]) -> list[StoredCount]:
    """Per crate, of its seqs up to ``through[crate]``: points, distinct seqs, lowest and highest; open gaps."""
    counts = []
    for crate, last in through.items():
        where = f"WHERE crate = '{crate}'"  # the demo's own crate ids, no outside input
        points = 'COUNT("seq"), COUNT(DISTINCT("seq")), MIN("seq"), MAX("seq")'
        rows = influx.rows(f'SELECT {points} FROM temperature {where} AND "seq" <= {last:d}')  # noqa: S608
        gaps = influx.rows(f"SELECT COUNT(missing) FROM gap {where} AND state != 'closed'")  # noqa: S608
        row = rows[0] if rows else {}
        counts.append(
            StoredCount(
                crate,
                int(row.get("count") or 0),  # type: ignore[call-overload]
                int(row.get("count_1") or 0),  # type: ignore[call-overload]
                int(row.get("min") or 0),  # type: ignore[call-overload]
                int(row.get("max") or 0),  # type: ignore[call-overload]
                int(gaps[0]["count"]) if gaps else 0,  # type: ignore[call-overload]
            )
        )
    return counts


class Handover:
    """Advance with ``step()`` from the demo's loop; ``handle`` takes the cluster's telemetry and storage acks."""

    def __init__(
        self,
        view: DemoView,
        influx: InfluxDB,
        fleet: Fleet,
        staff: BrokerSettings,
        *,
        speed: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._view = view
        self._influx = influx
        self._fleet = fleet
        self._speed = speed
        self._clock = clock
        self._lock = threading.Lock()
        self._published: dict[str, int] = {}  # crate -> highest seq seen on the cluster
        self._stored: dict[str, int] = {}  # crate -> latest stored_through
        self._at_kill: dict[str, int] = {}  # the killed gateway's crates -> their storage ack then
        self._target: dict[str, int] = {}  # crate -> highest seq published when readings were stored again
        self._killed_at: float | None = None
        self._served_after: float | None = None
        self._alice = ScriptedAck(view, staff, ("critical_high",), speed, clock)
        self._done: set[str] = set()
        self.verdict: bool | None = None  # every reading stored exactly once, once the hand-over is over

    def handle(self, topic: str, payload: bytes) -> None:
        """Note a crate's highest published seq and its storage acks (paho's thread)."""
        route = parse_topic(topic)
        crate = route.own_crate
        if crate is None:
            return
        try:
            if route.kind == TELEMETRY:
                seq = decode_telemetry(payload, crate).seq
                with self._lock:
                    self._published[crate] = max(seq, self._published.get(crate, 0))
            elif topic.endswith("/ack"):
                stored = decode_storage_ack(payload, crate).stored_through
                with self._lock:
                    self._stored[crate] = stored
                    moved = self._at_kill.get(crate)
                    if (
                        self._served_after is None
                        and self._killed_at is not None
                        and moved is not None
                        and stored > moved
                    ):
                        self._served_after = self._clock() - self._killed_at
        except WireFormatError:
            return

    def _first(self, name: str, due: bool) -> bool:
        if name in self._done or not due:
            return False
        self._done.add(name)
        return True

    def step(self) -> None:
        """Do whatever is due now."""
        first = self._view.first_reading_at(STORY_CRATE)
        if self._first("kill", first is not None and self._clock() >= first + KILL_AT_S / self._speed):
            told, crates = self._fleet.kill()
            with self._lock:
                self._at_kill = {crate: self._stored.get(crate, 0) for crate in crates}
                self._killed_at = self._clock()
            self._view.note(told)
        with self._lock:
            served_after = self._served_after
        if served_after is not None and self._first("served", True):
            with self._lock:
                self._target = {c.crate: self._published.get(c.crate, 0) for c in CRATES}
            self._view.note(
                f"HAND-OVER: readings stored again {served_after:.1f} s after the gateway's death;"
                f" {self._fleet.moves()}"
            )
        if "served" in self._done and self._first("caught up", self._caught_up()):
            self._count()
        too_late = self._killed_at is not None and self._clock() > self._killed_at + CATCH_UP_LIMIT_S
        if self._first("late", too_late and self.verdict is None):
            self.verdict = False
            self._view.note(f"HAND-OVER NOT DONE: storage acks short of the published seqs: {self._lag()}")
        if self._alice.step():
            self._view.note(f"{ACK_BY} (staff, scripted) takes on {STORY_CRATE}'s critical alarm over MQTT 3.1.1")

    def _caught_up(self) -> bool:
        """Every crate's storage ack has reached the highest seq it had published when it was served again."""
        with self._lock:
            return all(self._stored.get(crate, 0) >= last for crate, last in self._target.items())

    def _lag(self) -> str:
        with self._lock:
            return ", ".join(
                f"{c.crate} {self._stored.get(c.crate, 0)}/{self._published.get(c.crate, 0)}" for c in CRATES
            )

    def _count(self) -> None:
        try:
            counts = stored_counts(self._influx, self._target)
        except (OSError, ServiceError) as exc:
            self._view.note(f"could not count the stored readings: {exc}")
            return
        self.verdict = all(c.exactly_once and c.last == self._target[c.crate] for c in counts)
        listed = "; ".join(
            f"{c.crate} seqs {c.first}-{c.last}: {c.points} points, {c.open_gaps} open gaps" for c in counts
        )
        said = "readings all stored exactly once" if self.verdict else "READINGS NOT ALL STORED EXACTLY ONCE"
        self._view.note(f"HAND-OVER: {said} ({listed})")
