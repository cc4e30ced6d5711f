"""What the board currently knows: every crate's state, every open alarm and every alarm awaiting review."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from board.config import CrateInfo
from board.history import CrateHistory, FleetHistory, Trip, live_excursion
from board.messages import alarm_json
from coldchain.wire import AlarmView, CrateStatus, Telemetry

__all__ = ["BoardState", "CrateView", "alarm_order"]

_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def alarm_order(alarm: AlarmView) -> tuple[int, int, int]:
    """Sort key: most severe first, unacknowledged before acknowledged, then the oldest first.

    The oldest unacknowledged critical alarm is the one whose product has been at risk longest.
    """
    return (_SEVERITY_RANK[alarm.severity], alarm.state != "active", alarm.started_ts)


@dataclass
class CrateView:
    """One crate as shown on the board."""

    crate: str
    info: CrateInfo | None = None
    state: str = "unknown"  # until the retained status arrives
    state_ts: int | None = None
    last_ts: int | None = None
    last_seq: int | None = None
    readings: dict[str, dict[str, Any]] = field(default_factory=dict)
    telemetry_profile: str | None = None
    alarm_profile: str | None = None
    shipment: str | None = None
    # the shipment record its alarms carry (origin, destination, product), when the board has none
    record: dict[str, str] = field(default_factory=dict)
    # from InfluxDB (board.history): the shipment the gateway last recorded for it, and its excursions
    stored: CrateHistory | None = None
    history_error: str | None = None

    def profile(self, default: str) -> str:
        """Configured profile first, then what the crate or its alarms say, then the default."""
        configured = self.info.profile if self.info else None
        return configured or self.telemetry_profile or self.alarm_profile or default

    def current_shipment(self) -> str | None:
        """Configured first, then what its latest alarm says, then what the gateway stored."""
        configured = self.info.shipment if self.info else None
        return configured or self.shipment or (self.stored.latest if self.stored else None)

    def trip(self) -> Trip | None:
        """What InfluxDB holds of the crate on its current shipment (``""``: on none)."""
        return self.stored.trips.get(self.current_shipment() or "") if self.stored else None

    def to_json(self, default_profile: str) -> dict[str, Any]:
        """The shape the page's script renders."""
        info = self.info
        shipment = self.current_shipment()
        trip = self.trip()
        record = {**(trip.record if trip else {}), **self.record}
        return {
            "crate": self.crate,
            "state": self.state,
            "state_ts": self.state_ts,
            "last_ts": self.last_ts,
            "last_seq": self.last_seq,
            "readings": [self.readings[s] for s in sorted(self.readings)],
            "profile": self.profile(default_profile),
            "shipment": shipment,
            "origin": (info.origin if info else None) or record.get("origin"),
            "destination": (info.destination if info else None) or record.get("destination"),
            "product": (info.product if info else None) or record.get("product"),
            "departed_ts": trip.departed_ts if trip else None,
        }


class BoardState:
    """Applies broker messages in arrival order; each ``apply_*`` says which crate changed."""

    def __init__(self, crates: dict[str, CrateInfo], default_profile: str) -> None:
        self.default_profile = default_profile
        self.crates: dict[str, CrateView] = {c: CrateView(c, info) for c, info in crates.items()}
        self.alarms: dict[tuple[str, str, str], AlarmView] = {}
        # cleared before anyone acknowledged them (late ones included), until a person reviews them
        self.review: dict[tuple[str, str, str], AlarmView] = {}
        self.retained: dict[tuple[str, str, str], AlarmView] = {}  # every alarm topic's latest state, cleared too
        self.history_days = 0.0  # how far back the stored excursion history reaches (0: not read)

    def _crate(self, crate: str) -> CrateView:
        view = self.crates.get(crate)
        if view is None:
            view = self.crates[crate] = CrateView(crate)
        return view

    def apply_status(self, status: CrateStatus, arrived_ms: int | None = None) -> str:
        """An online/offline message: live ones (``arrived_ms``) in the broker's order, dated by their arrival.

        A crate's last will carries the time the crate connected (it is registered then), always older
        than the ``online`` that follows it: judged by its ``ts`` the crate would never look offline.
        The broker's order on the topic is the truth, and its arrival is when the crate was lost. A
        retained one (replayed on subscribing) older than what we hold is ignored.
        """
        view = self._crate(status.crate)
        if arrived_ms is not None:
            view.state, view.state_ts = status.state, arrived_ms
        elif view.state_ts is None or status.ts >= view.state_ts:
            view.state, view.state_ts = status.state, status.ts
        return status.crate

    def apply_telemetry(self, telemetry: Telemetry) -> str:
        """A reading tick; a late backlog (older than the newest shown) does not replace it."""
        view = self._crate(telemetry.crate)
        if telemetry.profile:
            view.telemetry_profile = telemetry.profile
        if view.last_ts is not None and telemetry.ts < view.last_ts:
            return telemetry.crate
        view.last_ts, view.last_seq = telemetry.ts, telemetry.seq
        for reading in telemetry.readings:
            view.readings[reading.sensor] = {
                "sensor": reading.sensor,
                "value_c": reading.value_c,
                "fault": reading.fault,
                "ts": telemetry.ts,
            }
        return telemetry.crate

    def apply_alarm(self, key: tuple[str, str, str], alarm: AlarmView | None) -> str:
        """The current state of one alarm topic: open alarms and those awaiting review are shown, others leave."""
        view = self._crate(key[0])
        self.alarms.pop(key, None)
        self.review.pop(key, None)
        self.retained.pop(key, None)
        if alarm is not None:
            self.retained[key] = alarm
        if alarm is not None and alarm.needs_review:
            self.review[key] = alarm
        elif alarm is not None and alarm.state != "cleared":
            self.alarms[key] = alarm
        if alarm is not None:
            view.alarm_profile = alarm.profile or view.alarm_profile
            extra = dict(alarm.extra)
            shipment = extra.get("shipment")
            if isinstance(shipment, str):
                view.shipment = shipment
            for name in ("origin", "destination", "product"):
                value = extra.get(name)
                if isinstance(value, str):
                    view.record[name] = value
        return key[0]

    def apply_history(self, fleet: FleetHistory) -> list[str]:
        """What InfluxDB holds (shipments, excursions); the crates whose cards changed."""
        changed = []
        self.history_days = fleet.days
        for crate in sorted(set(fleet.crates) | {c for c, v in self.crates.items() if v.stored or v.history_error}):
            view = self._crate(crate)
            stored, error = fleet.crates.get(crate), fleet.error
            if error is not None:
                stored = view.stored  # keep what was read before, and say the history is not current
            if (stored, error) != (view.stored, view.history_error):
                view.stored, view.history_error = stored, error
                changed.append(crate)
        return changed

    def open_alarm(self, crate: str, rule: str, sensor: str) -> AlarmView | None:
        """The alarm staff may acknowledge there: open, or awaiting review."""
        key = (crate, rule, sensor)
        return self.alarms.get(key) or self.review.get(key)

    def alarms_json(self) -> list[dict[str, Any]]:
        """Open alarms in the order people should look at them."""
        return [alarm_json(a) for a in sorted(self.alarms.values(), key=alarm_order)]

    def review_json(self) -> list[dict[str, Any]]:
        """Alarms awaiting review, each with its crate's shipment; the page groups them per shipment."""
        out = []
        for alarm in sorted(self.review.values(), key=alarm_order):
            body = alarm_json(alarm)
            if not isinstance(body.get("shipment"), str):
                body["shipment"] = self._crate(alarm.crate).current_shipment()
            out.append(body)
        return out

    def _history(self, crate: str, view: CrateView) -> list[dict[str, Any]]:
        """The crate's excursions on its current shipment: stored ones and those the broker holds, newest first."""
        shipment = view.current_shipment()
        trip = view.trip()
        seen = {e["id"]: dict(e) for e in trip.excursions} if trip else {}
        for alarm in self.retained.values():
            if alarm.crate == crate and (alarm.optional("shipment") or shipment) == shipment:
                seen.setdefault(alarm.alarm_id, {}).update(live_excursion(alarm))
        return sorted(seen.values(), key=lambda e: e["started_ts"], reverse=True)

    def crate_json(self, crate: str) -> dict[str, Any]:
        """One crate's card, with the worst severity of its open alarms and its shipment's excursions."""
        view = self._crate(crate)
        body = view.to_json(self.default_profile)
        open_alarms = sorted((a for a in self.alarms.values() if a.crate == crate), key=alarm_order)
        body["worst"] = open_alarms[0].severity if open_alarms else None
        body["alarm_count"] = len(open_alarms)
        body["review_count"] = sum(1 for a in self.review.values() if a.crate == crate)
        body["excursions"] = self._history(crate, view)
        body["history_days"] = self.history_days
        body["history_error"] = view.history_error
        return body

    def snapshot(self) -> dict[str, Any]:
        """Everything, for a page that just connected."""
        return {
            "alarms": self.alarms_json(),
            "review": self.review_json(),
            "crates": [self.crate_json(c) for c in sorted(self.crates)],
        }
