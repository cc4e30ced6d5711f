"""Each crate's shipment and the excursions of that shipment since departure, as InfluxDB holds them.

The gateway writes measurement ``shipment`` (tags ``shipment``, ``crate``; the record's
``origin``, ``destination``, ``product``) when it first sees a crate in a run, and every alarm
change as measurement ``alarm`` tagged with the crate's ``shipment``. From those the board knows,
for every crate that reported within ``history_days``: the shipment the gateway last recorded for
it, when the crate was first seen on each shipment (its departure, as far as the gateway knows),
and each excursion of each shipment (one per alarm id: rule, sensor, severity, start, end, late,
who acknowledged or reviewed it). Crates on no shipment keep their excursions under ``""``.

One request with two InfluxQL statements, both bounded by time and by ``LIMIT`` per series.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from adapters.influx_read import V1Reader
from board.config import BoardInfluxSettings
from board.influx import HistoryError, query
from coldchain.wire import AlarmView

__all__ = [
    "CrateHistory",
    "FleetHistory",
    "HistoryReadError",
    "Trip",
    "live_excursion",
    "parse_history",
    "read_fleet_history",
]

SERIES_LIMIT: Final = 1000  # points per series: far more alarm changes than one shipment has
_RECORD: Final = ("origin", "destination", "product")


@dataclass(frozen=True)
class Trip:
    """One crate on one shipment: first seen (departure), the shipment's record, its excursions newest first."""

    departed_ts: int | None = None
    record: Mapping[str, str] = field(default_factory=dict)
    excursions: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class CrateHistory:
    """A crate's shipments as the gateway stored them; ``latest`` is the one it recorded last."""

    latest: str | None = None
    trips: Mapping[str, Trip] = field(default_factory=dict)  # shipment id ("" for none) -> trip


@dataclass(frozen=True)
class FleetHistory:
    """Every crate's history over the last ``days`` days, or ``error`` saying why it could not be read."""

    days: float
    crates: Mapping[str, CrateHistory] = field(default_factory=dict)
    error: str | None = None


class HistoryReadError(Exception):
    """InfluxDB could not be asked or gave no usable answer; the message says which server and why."""


def live_excursion(alarm: AlarmView) -> dict[str, Any]:
    """An excursion as the broker's retained alarm tells it (the newest word on it)."""
    ended = alarm.optional("ended_ts")
    by = alarm.optional("acknowledged_by")
    return {
        "id": alarm.alarm_id,
        "rule": alarm.rule,
        "sensor": alarm.sensor,
        "severity": alarm.severity,
        "started_ts": alarm.started_ts,
        "ended_ts": ended if isinstance(ended, int) and not isinstance(ended, bool) else None,
        "state": alarm.state,
        "late": alarm.optional("late") is True,
        "acknowledged_by": by if isinstance(by, str) else None,
        "needs_review": alarm.needs_review,
    }


def queries(days: float) -> str:
    """The two statements, in one request."""
    since = f"time > now() - {int(days * 86400)}s"  # a number: nothing from outside enters the query
    shipments = f'SELECT * FROM "shipment" WHERE {since} GROUP BY "crate", "shipment" LIMIT {SERIES_LIMIT}'  # noqa: S608
    fields = '"state", "change", "started_ts", "id", "late", "by", "ended_ts"'
    alarms = (
        f'SELECT {fields} FROM "alarm" WHERE {since} '  # noqa: S608
        f'GROUP BY "crate", "shipment", "rule", "sensor", "severity" LIMIT {SERIES_LIMIT}'
    )
    return f"{shipments}; {alarms}"


def _rows(result: Mapping[str, Any]) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """(tags, row) for every row of a statement's result."""
    out: list[tuple[dict[str, str], dict[str, Any]]] = []
    for series in result.get("series", []):
        tags = {k: str(v) for k, v in (series.get("tags") or {}).items()}
        columns = series["columns"]
        out.extend((tags, dict(zip(columns, values, strict=True))) for values in series["values"])
    return out


def _trips(result: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """crate -> shipment -> {first, last, record} from the ``shipment`` statement."""
    crates: dict[str, dict[str, Any]] = {}
    for tags, row in _rows(result):
        crate, shipment, ts = tags.get("crate", ""), tags.get("shipment", ""), int(row["time"])
        trip = crates.setdefault(crate, {}).setdefault(shipment, {"first": ts, "last": ts, "record": {}})
        trip["first"], trip["last"] = min(trip["first"], ts), max(trip["last"], ts)
        trip["record"].update({k: str(row[k]) for k in _RECORD if isinstance(row.get(k), str) and row[k]})
    return crates


def _excursions(result: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """(crate, shipment) -> alarm id -> excursion, from the ``alarm`` statement."""
    out: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for tags, row in _rows(result):
        alarm_id = row.get("id")
        if not isinstance(alarm_id, str) or not isinstance(row.get("started_ts"), (int, float)):
            continue  # an escalation merged into its raising point carries neither alone
        crate, shipment = tags.get("crate", ""), tags.get("shipment", "")
        excursion = out.setdefault((crate, shipment), {}).setdefault(
            alarm_id,
            {
                "id": alarm_id, "rule": tags.get("rule", ""), "sensor": tags.get("sensor", ""),
                "severity": tags.get("severity", ""), "started_ts": int(row["started_ts"]), "ended_ts": None,
                "state": "active", "late": False, "acknowledged_by": None, "needs_review": False,
            },
        )  # fmt: skip
        change = row.get("change") or row.get("state")
        excursion["late"] = excursion["late"] or row.get("late") is True
        if change == "cleared":
            excursion["state"] = "cleared"
            if isinstance(row.get("ended_ts"), (int, float)):
                excursion["ended_ts"] = int(row["ended_ts"])
        elif change == "acknowledged" and isinstance(row.get("by"), str):
            excursion["acknowledged_by"] = row["by"]
            excursion["state"] = "acknowledged" if excursion["state"] == "active" else excursion["state"]
    for excursions in out.values():
        for excursion in excursions.values():
            excursion["needs_review"] = excursion["state"] == "cleared" and excursion["acknowledged_by"] is None
    return out


def parse_history(body: Any, days: float) -> FleetHistory:
    """The fleet's history from InfluxDB's answer to ``queries``; HistoryReadError when it is not one."""
    try:
        results = body["results"]
        for result in results:
            if "error" in result and not str(result["error"]).startswith("database not found"):
                raise HistoryReadError(f"InfluxDB refused the history query: {str(result['error'])[:200]}")
        trips = _trips(results[0]) if results else {}
        excursions = _excursions(results[1]) if len(results) > 1 else {}
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise HistoryReadError(f"InfluxDB's answer is not a query result ({type(exc).__name__})") from None
    crates: dict[str, CrateHistory] = {}
    for crate in set(trips) | {c for c, _ in excursions}:
        mine = trips.get(crate, {})
        latest = max(mine, key=lambda s: mine[s]["last"]) if mine else None
        shipments = set(mine) | {s for c, s in excursions if c == crate}
        crates[crate] = CrateHistory(
            latest=latest or None,
            trips={
                s: Trip(
                    departed_ts=mine[s]["first"] if s in mine and s else None,
                    record=dict(mine[s]["record"]) if s in mine else {},
                    excursions=tuple(
                        sorted(excursions.get((crate, s), {}).values(), key=lambda e: e["started_ts"], reverse=True)
                    ),
                )
                for s in shipments
            },
        )
    return FleetHistory(days, crates)


async def read_fleet_history(reader: V1Reader, settings: BoardInfluxSettings) -> FleetHistory:
    """Every crate's shipments and excursions over ``settings.history_days``; a FleetHistory with ``error`` when
    InfluxDB cannot answer (the board then says the history is not current, and keeps what it had)."""
    try:
        return parse_history(await query(reader, queries(settings.history_days)), settings.history_days)
    except (HistoryError, HistoryReadError) as exc:
        return FleetHistory(settings.history_days, error=str(exc))
