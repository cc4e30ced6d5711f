"""What the board currently knows: every crate's state and every open alarm, ordered for people."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from board.config import CrateInfo
from board.messages import alarm_json
from coldchain.alarm_view import AlarmView
from coldchain.status_view import StatusView
from coldchain.wire import Telemetry

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

    def profile(self, default: str) -> str:
        """Configured profile first, then what the crate or its alarms say, then the default."""
        configured = self.info.profile if self.info else None
        return configured or self.telemetry_profile or self.alarm_profile or default

    def to_json(self, default_profile: str) -> dict[str, Any]:
        """The shape the page's script renders."""
        info = self.info
        return {
            "crate": self.crate,
            "state": self.state,
            "state_ts": self.state_ts,
            "last_ts": self.last_ts,
            "last_seq": self.last_seq,
            "readings": [self.readings[s] for s in sorted(self.readings)],
            "profile": self.profile(default_profile),
            "shipment": (info.shipment if info else None) or self.shipment,
            "origin": (info.origin if info else None) or self.record.get("origin"),
            "destination": (info.destination if info else None) or self.record.get("destination"),
            "product": (info.product if info else None) or self.record.get("product"),
        }


class BoardState:
    """Applies broker messages in arrival order; each ``apply_*`` says which crate changed."""

    def __init__(self, crates: dict[str, CrateInfo], default_profile: str) -> None:
        self.default_profile = default_profile
        self.crates: dict[str, CrateView] = {c: CrateView(c, info) for c, info in crates.items()}
        self.alarms: dict[tuple[str, str, str], AlarmView] = {}

    def _crate(self, crate: str) -> CrateView:
        view = self.crates.get(crate)
        if view is None:
            view = self.crates[crate] = CrateView(crate)
        return view

    def apply_status(self, status: StatusView) -> str:
        """A retained online/offline message; an older one than we hold is ignored."""
        view = self._crate(status.crate)
        if view.state_ts is None or status.ts >= view.state_ts:
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
        """The current state of one alarm topic; cleared or removed alarms leave the board."""
        view = self._crate(key[0])
        if alarm is None or alarm.state == "cleared":
            self.alarms.pop(key, None)
        else:
            self.alarms[key] = alarm
        if alarm is not None:
            view.alarm_profile = alarm.profile or view.alarm_profile
            extra = dict(alarm.extra)
            shipment = extra.get("shipment")
            if isinstance(shipment, str):
                view.shipment = shipment
            for name in ("origin", "destination", "product"):
                if isinstance(extra.get(name), str):
                    view.record[name] = extra[name]
        return key[0]

    def open_alarm(self, crate: str, rule: str, sensor: str) -> AlarmView | None:
        """The alarm staff may acknowledge there, if one is open."""
        return self.alarms.get((crate, rule, sensor))

    def alarms_json(self) -> list[dict[str, Any]]:
        """Open alarms in the order people should look at them."""
        return [alarm_json(a) for a in sorted(self.alarms.values(), key=alarm_order)]

    def crate_json(self, crate: str) -> dict[str, Any]:
        """One crate's card, with the worst severity of its open alarms."""
        body = self._crate(crate).to_json(self.default_profile)
        open_alarms = sorted((a for a in self.alarms.values() if a.crate == crate), key=alarm_order)
        body["worst"] = open_alarms[0].severity if open_alarms else None
        body["alarm_count"] = len(open_alarms)
        return body

    def snapshot(self) -> dict[str, Any]:
        """Everything, for a page that just connected."""
        return {
            "alarms": self.alarms_json(),
            "crates": [self.crate_json(c) for c in sorted(self.crates)],
        }
