"""Alarm lifecycle: active -> acknowledged (by a named person, with a note) -> cleared.

An ``AlarmBook`` turns rule transitions into alarm changes, accepts or rejects
acknowledgements, escalates what nobody acknowledged in time, and separates
what is happening now from what a late backlog reveals: an excursion that began
and ended before its data arrived is reported with its true start and end,
marked ``late``, and pages nobody. Times are passed in: event time from the
readings, arrival time from the gateway's clock. The book's state is a JSON-able
dict, so a restarted gateway neither loses an alarm nor raises one twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final

from coldchain.alarms.transition import AlarmTransition
from coldchain.errors import ColdchainError
from coldchain.settings.table import Table
from coldchain.wire import WIRE_VERSION, StaffAck
from coldchain.wire.alarms import ACKNOWLEDGED, ACTIVE, CLEARED, SEVERITIES

__all__ = [
    "ACKNOWLEDGED",
    "ESCALATED",
    "AckRejectedError",
    "Alarm",
    "AlarmBook",
    "AlarmChange",
    "LifecyclePolicy",
    "parse_lifecycle_policy",
]

ESCALATED: Final = "escalated"  # an event, not a state: the alarm stays active
_RECENT_IDS: Final = 32  # per crate/rule/sensor: enough to recognise any replay after a restart


class AckRejectedError(ColdchainError, ValueError):
    """An acknowledgement names no alarm awaiting one; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm (one excursion of one rule on one sensor of one crate) as it stands now."""

    crate: str
    rule: str
    kind: str
    severity: str
    sensor: str
    state: str  # active, acknowledged or cleared
    started_ts: int  # event time the condition began: part of the identity
    raised_ts: int  # event time of the reading (or tick) that raised it
    raised_at: int  # arrival time the gateway raised it: escalation counts from here
    profile: str = ""
    shipment: str | None = None  # the shipment the crate is assigned to, if any
    seq: int | None = None  # of the reading behind the latest transition (raise or clear)
    value_c: float | None = None  # ...and its value
    threshold_c: float | None = None
    detail: str = ""
    predicted_ts: int | None = None
    ended_ts: int | None = None  # event time it cleared
    late: bool = False  # began and ended before its data arrived
    escalated: bool = False
    acknowledged_by: str | None = None
    acknowledged_ts: int | None = None
    note: str | None = None

    @property
    def alarm_id(self) -> str:
        """Deterministic identity: the same excursion always gets the same id."""
        return f"{self.crate}/{self.rule}/{self.sensor}/{self.started_ts}"

    @property
    def needs_review(self) -> bool:
        """Cleared before anyone acknowledged it (late ones included): a person must still look at it."""
        return self.state == CLEARED and self.acknowledged_by is None

    @property
    def key(self) -> str:
        """crate/rule/sensor: the topic suffix of the alarm's retained state."""
        return f"{self.crate}/{self.rule}/{self.sensor}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for the book's persisted state)."""
        # every field is a scalar: asdict()'s recursive deep copy would cost a published alarm ~30 µs
        return {name: getattr(self, name) for name in _ALARM_FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alarm:
        """Inverse of ``to_dict``."""
        return cls(**data)

    def to_wire(self) -> dict[str, Any]:
        """The retained alarm payload: ``ts``, ``seq`` and ``value_c`` of the transition's reading, and more."""
        body = {"v": WIRE_VERSION, "id": self.alarm_id, **self.to_dict()}
        body["ts"] = self.ended_ts if self.state == CLEARED and self.ended_ts is not None else self.raised_ts
        del body["raised_at"]
        return body


_ALARM_FIELDS = tuple(f.name for f in fields(Alarm))


@dataclass(frozen=True, slots=True)
class AlarmChange:
    """Something people must hear of: ``change`` is active, acknowledged, cleared or escalated.

    ``ts`` is when the change happened: the reading's event time for active and
    cleared, the person's for acknowledged, the gateway's clock for escalated.
    """

    change: str
    alarm: Alarm
    ts: int

    @property
    def idempotency_key(self) -> str:
        """Alarm id + change: a receiver seeing it twice knows it is the same notification."""
        return f"{self.alarm.alarm_id}/{self.change}"

    @property
    def pages(self) -> bool:
        """True when someone should be woken: a live alarm raised or escalated (never a late one)."""
        return self.change in (ACTIVE, ESCALATED) and not self.alarm.late


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    """``escalate_after_s`` per severity (missing: never escalates); data older than ``late_after_s``
    on arrival is a backlog; a backlog alarm still active is announced once its crate is caught up,
    or at the latest ``hold_s`` after it arrived."""

    escalate_after_s: Mapping[str, float] = field(default_factory=lambda: {"critical": 900.0, "warning": 3600.0})
    late_after_s: float = 300.0
    hold_s: float = 60.0


def parse_lifecycle_policy(table: Table) -> LifecyclePolicy:
    """The ``[alarms]`` table of the gateway's config: ``escalate_after_s`` (a table of severity = seconds;
    a severity left out never escalates), ``late_after_s`` and ``hold_s``."""
    escalate = table.table("escalate_after_s")
    after = {}
    for severity in list(escalate.keys()):
        if severity not in SEVERITIES:
            raise escalate.error(severity, f"is not a severity ({', '.join(SEVERITIES)})")
        after[severity] = escalate.number(severity, minimum=1.0)
    defaults = LifecyclePolicy()
    return LifecyclePolicy(
        escalate_after_s=after if "escalate_after_s" in table else defaults.escalate_after_s,
        late_after_s=table.number("late_after_s", defaults.late_after_s, minimum=1.0),
        hold_s=table.number("hold_s", defaults.hold_s, minimum=0.0),
    )


class AlarmBook:
    """Every alarm the gateway knows, keyed by crate/rule/sensor."""

    def __init__(self, policy: LifecyclePolicy | None = None) -> None:
        self.policy = policy or LifecyclePolicy()
        self._alarms: dict[str, Alarm] = {}  # the latest alarm per key, cleared ones included
        self._held: dict[str, int] = {}  # key -> arrival time of a backlog alarm not yet announced
        self._recent: dict[str, list[str]] = {}  # key -> ids already raised

    def get(self, crate: str, rule: str, sensor: str) -> Alarm | None:
        """The latest alarm of crate/rule/sensor, whatever its state."""
        return self._alarms.get(f"{crate}/{rule}/{sensor}")

    def open_alarms(self) -> list[Alarm]:
        """Alarms not cleared (including ones held back while their backlog is replayed)."""
        return [a for a in self._alarms.values() if a.state != CLEARED]

    def apply(
        self, crate: str, transition: AlarmTransition, arrival_ms: int, profile: str = "", shipment: str | None = None
    ) -> list[AlarmChange]:
        """Account for a rule transition of ``crate`` whose data arrived at ``arrival_ms``."""
        t = transition
        key = f"{crate}/{t.rule}/{t.sensor}"
        alarm_id = f"{key}/{t.started_ts}"
        current = self._alarms.get(key)
        if t.state == ACTIVE:
            if alarm_id in self._recent.get(key, ()):
                return []  # replayed after a restart: raised already
            alarm = Alarm(
                crate, t.rule, t.kind, t.severity, t.sensor, ACTIVE, t.started_ts, t.ts, arrival_ms, profile,
                shipment, t.seq, t.value_c, t.threshold_c, t.detail, t.predicted_ts,
            )  # fmt: skip
            self._alarms[key] = alarm
            recent = self._recent.setdefault(key, [])
            recent.append(alarm_id)
            del recent[:-_RECENT_IDS]
            self._held.pop(key, None)
            if arrival_ms - t.ts > self.policy.late_after_s * 1000:
                self._held[key] = arrival_ms
                return []
            return [AlarmChange(ACTIVE, alarm, t.ts)]
        if current is None or current.alarm_id != alarm_id or current.state == CLEARED:
            return []  # nothing open under this identity (a replay of a clear already applied)
        cleared = replace(current, state=CLEARED, ended_ts=t.ts, seq=t.seq, value_c=t.value_c)
        if self._held.pop(key, None) is not None:
            # began and ended before anyone could have known: say so, with the true times, page nobody
            late = replace(cleared, late=True)
            self._alarms[key] = late
            raised = replace(current, late=True)
            return [AlarmChange(ACTIVE, raised, current.raised_ts), AlarmChange(CLEARED, late, t.ts)]
        self._alarms[key] = cleared
        return [AlarmChange(CLEARED, cleared, t.ts)]

    def caught_up(self, crate: str, ts: int, arrival_ms: int) -> list[AlarmChange]:
        """A reading of ``crate`` at event time ``ts`` arrived: once live, announce its held alarms."""
        if not self._held or arrival_ms - ts > self.policy.late_after_s * 1000:
            return []
        return self._announce([k for k in self._held if self._alarms[k].crate == crate])

    def _announce(self, keys: list[str]) -> list[AlarmChange]:
        events = []
        for key in keys:
            del self._held[key]
            alarm = self._alarms[key]
            events.append(AlarmChange(ACTIVE, alarm, alarm.raised_ts))
        return events

    def tick(self, now_ms: int) -> list[AlarmChange]:
        """Announce backlog alarms held too long, and escalate active alarms nobody acknowledged in time."""
        hold_ms = self.policy.hold_s * 1000
        events = self._announce([k for k, at in self._held.items() if now_ms - at >= hold_ms])
        for key, alarm in self._alarms.items():
            after_s = self.policy.escalate_after_s.get(alarm.severity)
            if alarm.state != ACTIVE or alarm.escalated or key in self._held or after_s is None:
                continue
            if now_ms - alarm.raised_at >= after_s * 1000:
                self._alarms[key] = replace(alarm, escalated=True)
                events.append(AlarmChange(ESCALATED, self._alarms[key], now_ms))
        return events

    def acknowledge(self, ack: StaffAck) -> AlarmChange:
        """Record who acknowledged the alarm the ack names; AckRejectedError (with why) when it cannot be.

        An active alarm becomes acknowledged. An alarm that cleared before anyone acknowledged it (a
        late one included) still needs a person to look at it: the ack records that review, and the
        alarm stays cleared, now with ``acknowledged_by``. An ack naming an alarm id is refused when
        another alarm is current under its crate/rule/sensor.
        """
        if not ack.by.strip():
            raise AckRejectedError("an acknowledgement must name the person")
        key = f"{ack.crate}/{ack.rule}/{ack.sensor}"
        alarm = self._alarms.get(key)
        if alarm is None:
            raise AckRejectedError(f"no alarm {key} is known")
        if ack.alarm_id is not None and ack.alarm_id != alarm.alarm_id:
            raise AckRejectedError(f"alarm {ack.alarm_id} is no longer current: {alarm.alarm_id} is")
        if alarm.acknowledged_by is not None:
            raise AckRejectedError(
                f"alarm {alarm.alarm_id} is already acknowledged by {alarm.acknowledged_by} at {alarm.acknowledged_ts}"
            )
        self._held.pop(key, None)  # acknowledged by someone who saw it: no later announcement
        state = CLEARED if alarm.state == CLEARED else ACKNOWLEDGED
        acknowledged = replace(alarm, state=state, acknowledged_by=ack.by, acknowledged_ts=ack.ts, note=ack.note)
        self._alarms[key] = acknowledged
        return AlarmChange(ACKNOWLEDGED, acknowledged, ack.ts)

    def forget(self, crate: str) -> bool:
        """Drop ``crate``'s cleared alarms (their audit trail stays in InfluxDB); False, keeping all, if one is open
        or still needs review (it cleared before anyone acknowledged it)."""
        prefix = f"{crate}/"  # crate ids never contain '/'
        keys = [k for k in self._alarms if k.startswith(prefix)]
        if any(self._alarms[k].state != CLEARED or self._alarms[k].needs_review for k in keys):
            return False
        for key in keys:
            del self._alarms[key]
            self._recent.pop(key, None)
            self._held.pop(key, None)
        return True

    def crate_dict(self, crate: str) -> dict[str, Any]:
        """``crate``'s part of ``to_dict`` (what a gateway taking the crate over needs of the book)."""
        prefix = f"{crate}/"
        return {
            "alarms": [a.to_dict() for k, a in self._alarms.items() if k.startswith(prefix)],
            "held": {k: at for k, at in self._held.items() if k.startswith(prefix)},
            "recent": {k: list(v) for k, v in self._recent.items() if k.startswith(prefix)},
        }

    def adopt(self, crate: str, data: Mapping[str, Any]) -> None:
        """Replace ``crate``'s alarms by its part of a book (``crate_dict``), as its previous gateway saved it."""
        self.drop(crate)
        for raw in data["alarms"]:
            alarm = Alarm.from_dict(raw)
            self._alarms[alarm.key] = alarm
        self._held.update({k: int(v) for k, v in data["held"].items()})
        self._recent.update({k: list(v) for k, v in data["recent"].items()})

    def drop(self, crate: str) -> None:
        """Forget every alarm of ``crate``, open or not: another gateway serves it now."""
        prefix = f"{crate}/"
        for table in (self._alarms, self._held, self._recent):
            for key in [k for k in table if k.startswith(prefix)]:
                del table[key]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state; persist it after every change that produced events."""
        return {
            "alarms": [a.to_dict() for a in self._alarms.values()],
            "held": dict(self._held),
            "recent": {k: list(v) for k, v in self._recent.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], policy: LifecyclePolicy | None = None) -> AlarmBook:
        """A book resumed from ``to_dict``."""
        book = cls(policy)
        for raw in data["alarms"]:
            alarm = Alarm.from_dict(raw)
            book._alarms[alarm.key] = alarm
        book._held = {k: int(v) for k, v in data["held"].items()}
        book._recent = {k: list(v) for k, v in data["recent"].items()}
        return book
