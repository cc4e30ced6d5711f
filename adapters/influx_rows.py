"""The record's rows as the readers return them: readings, probe faults, alarm transitions, gaps, releases.

Both readers (InfluxQL of 1.x servers, Flux of v2 servers) flatten a stored point into a mapping of its
fields and tags; the functions here make the one row type of each measurement from either, so the
commands and the board never see InfluxDB's answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coldchain.wire import TS_CORRECTED, TS_UNCERTAIN

__all__ = [
    "AlarmRow",
    "FaultRow",
    "GapRow",
    "ReadingRow",
    "ReleaseRow",
    "StoredPoint",
    "alarm_row",
    "gap_row",
    "reading_row",
    "release_row",
    "shipment_details",
]


StoredPoint = tuple[int, dict[str, Any]]  # a point's time (epoch ms) and its fields and tags

@dataclass(frozen=True, slots=True)
class ReadingRow:
    """One stored reading."""

    ts_ms: int
    crate: str
    sensor: str
    value_c: float
    seq: int | None
    profile: str | None
    shipment: str | None = None  # the tag: the shipment the crate was assigned to when the gateway stored it
    ts_flag: str | None = None  # ``ts_corrected`` or ``ts_uncertain``: taken while the crate's clock was unset


@dataclass(frozen=True, slots=True)
class FaultRow:
    """A reading the probe could not take (``OPEN``, ``SHORT``, ``RANGE``): the temperature is unknown."""

    ts_ms: int
    crate: str
    sensor: str
    fault: str
    seq: int | None
    ts_flag: str | None = None  # ``ts_corrected`` or ``ts_uncertain``: taken while the crate's clock was unset


@dataclass(frozen=True, slots=True)
class AlarmRow:
    """One stored alarm transition (acknowledgements carry ``by`` and ``note``, or ``acknowledged_by`` in older
    records; a raising point carries ``escalated_ts`` once escalated; older gateways wrote an escalation as a
    point of its own, ``change`` ``escalated`` with state ``active``)."""

    ts_ms: int
    crate: str
    rule: str
    sensor: str
    severity: str
    state: str
    value_c: float | None
    threshold_c: float | None
    seq: int | None
    alarm_id: str | None
    by: str | None
    note: str | None
    change: str | None = None
    escalated_ts: int | None = None  # when the gateway escalated the alarm this point raised

    @property
    def transition(self) -> str:
        """The state; ``escalated`` for an escalation an older gateway wrote as a point of its own."""
        return "escalated" if "escalated" in (self.change, self.state) else self.state


@dataclass(frozen=True, slots=True)
class ReleaseRow:
    """A QA release decision (measurement ``release``) on the data whose report hash is ``sha256``."""

    ts_ms: int
    by: str
    decision: str
    note: str
    sha256: str
    verdict: str | None


@dataclass(frozen=True, slots=True)
class GapRow:
    """Messages of a crate that did not arrive: seq ``first_seq`` to ``last_seq``.

    ``state`` is the gateway's: ``open``, ``closed`` (the late messages arrived after all)
    or ``abandoned``; ``still_missing`` how many have not arrived.
    """

    ts_ms: int
    crate: str
    first_seq: int | None
    last_seq: int | None
    state: str | None = None
    still_missing: int | None = None
    lost: int | None = None  # seqs the crate declared gone for good

    @property
    def missing(self) -> int | None:
        """How many messages are still missing (the whole span when the gateway does not say)."""
        if self.still_missing is not None:
            return self.still_missing
        if self.first_seq is None or self.last_seq is None:
            return None
        return self.last_seq - self.first_seq + 1


def _optional(row: Mapping[str, Any], key: str, kind: type) -> Any:
    value = row.get(key)
    # Flux answers an absent field of a pivoted row with an empty string: the same as missing
    return None if value is None or value == "" else kind(value)


def _ts_flag(row: Mapping[str, Any]) -> str | None:
    """Which time flag a reading's row carries (the gateway writes at most one, only as true)."""
    # Flux answers an absent field with an empty string, InfluxQL with null: only true sets a flag
    return TS_UNCERTAIN if row.get(TS_UNCERTAIN) is True else TS_CORRECTED if row.get(TS_CORRECTED) is True else None


def reading_row(row: Mapping[str, Any], ts_ms: int) -> ReadingRow | FaultRow:
    """A reading, or a fault when the row has no value, from a flattened row (either API)."""
    seq, flag = _optional(row, "seq", int), _ts_flag(row)
    if row.get("value_c") is None:
        fault = str(row.get("fault") or "unknown")
        return FaultRow(ts_ms, str(row.get("crate")), str(row.get("sensor")), fault, seq, flag)
    profile, shipment = _optional(row, "profile", str), _optional(row, "shipment", str)
    return ReadingRow(
        ts_ms, str(row.get("crate")), str(row.get("sensor")), float(row["value_c"]), seq, profile, shipment, flag
    )


def alarm_row(row: Mapping[str, Any], ts_ms: int) -> AlarmRow:
    """An alarm row from a flattened InfluxDB row (either API)."""
    return AlarmRow(
        ts_ms=ts_ms,
        crate=str(row.get("crate")),
        rule=str(row.get("rule")),
        sensor=str(row.get("sensor")),
        severity=str(row.get("severity")),
        state=str(row.get("state")),
        value_c=_optional(row, "value_c", float),
        threshold_c=_optional(row, "threshold_c", float),
        seq=_optional(row, "seq", int),
        alarm_id=_optional(row, "alarm_id", str) or _optional(row, "id", str),
        by=_optional(row, "by", str) or _optional(row, "acknowledged_by", str),
        note=_optional(row, "note", str),
        change=_optional(row, "change", str),
        escalated_ts=_optional(row, "escalated_ts", int),
    )


def release_row(row: Mapping[str, Any], ts_ms: int) -> ReleaseRow:
    """A release decision from a flattened InfluxDB row (either API)."""
    return ReleaseRow(
        ts_ms,
        str(row.get("by") or ""),
        str(row.get("decision") or ""),
        str(row.get("note") or ""),
        str(row.get("sha256") or ""),
        _optional(row, "verdict", str),
    )


def gap_row(row: Mapping[str, Any], ts_ms: int) -> GapRow:
    """A gap row; the seq bounds are read from the first of the field names the gateway may use."""
    first = next((row[k] for k in ("first_seq", "first_missing", "first") if row.get(k) is not None), None)
    last = next((row[k] for k in ("last_seq", "last_missing", "last") if row.get(k) is not None), None)
    return GapRow(
        ts_ms,
        str(row.get("crate")),
        None if first is None else int(first),
        None if last is None else int(last),
        _optional(row, "state", str),
        _optional(row, "missing", int),
        _optional(row, "lost", int),
    )


SHIPMENT_DETAILS = ("origin", "destination", "product")


def shipment_details(row: Mapping[str, Any]) -> dict[str, str]:
    """origin, destination and product of a ``shipment`` row (either API), those it holds."""
    return {key: str(row[key]) for key in SHIPMENT_DETAILS if _optional(row, key, str) is not None}
