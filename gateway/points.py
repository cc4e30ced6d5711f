"""The gateway's InfluxDB measurements (the contract in docs/gateway.md), as line protocol.

``temperature``: tags crate, profile, sensor (and shipment, when the crate is assigned one);
fields value_c (float) and seq (integer), or fault (string, e.g. "OPEN") and seq for a probe
fault; a reading whose time the crate corrected also ts_corrected or ts_uncertain (boolean, only
ever true: ``time_flagged``); time = the reading's ts.
``gap``, ``rejected``, ``shipment`` and ``gateway`` are described at their builders (``alarm`` at
``gateway.notify.audit.audit_point``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from coldchain.record.lineprotocol import FieldValue, point, series_key, string_field
from gateway.sequence import Gap

__all__ = [
    "EXCERPT_BYTES",
    "fault_line",
    "gap_point",
    "health_point",
    "rejected_point",
    "shipment_point",
    "temperature_series",
    "time_flagged",
]

EXCERPT_BYTES: Final = 256


def temperature_series(crate: str, profile: str, sensor: str, shipment: str | None = None) -> str:
    """The series key of a probe's readings (cached per crate and sensor by the caller)."""
    tags = {"crate": crate, "profile": profile, "sensor": sensor, "shipment": shipment or ""}
    return series_key("temperature", tags)


def fault_line(series: str, fault: str, seq: int, ts_ms: int) -> str:
    """A reading the probe could not take: visible as field ``fault``, with no ``value_c``."""
    return f"{series} fault={string_field(fault)},seq={seq}i {ts_ms}"


def time_flagged(line: str, flag: str) -> str:
    """A ``temperature`` line with the boolean field ``flag`` (``ts_corrected`` or ``ts_uncertain``) set true.

    Added to the lines already built rather than passed to their builders: the hot path of readings
    from a set clock stays as it was.
    """
    head, ts = line.rsplit(" ", 1)  # the timestamp, last, holds no space
    return f"{head},{flag}=true {ts}"


def gap_point(crate: str, gap: Gap) -> str:
    """``gap``: seqs first_missing..last_missing never arrived; rewritten (same time) as late ones fill it.

    ``missing`` counts those still awaited; ``state`` is open, closed (all arrived), lost (the crate
    said the rest are gone for good; ``lost`` counts them) or abandoned (too many open gaps on this
    crate to track). Time: the message that revealed it (or 1 ms after the crate's previous gap, so two
    gaps never share a point).
    """
    fields: dict[str, FieldValue] = {
        "first_missing": gap.first,
        "last_missing": gap.last,
        "missing": gap.remaining,
        "state": gap.state,
    }
    if gap.lost:
        fields["lost"] = gap.lost
    return point("gap", {"crate": crate}, fields, gap.ts)


# InfluxDB keeps one point per series and time: two rejects of one crate for one reason in the same
# millisecond would overwrite each other, so each series' reject times are made to increase
_last_reject_ms: dict[tuple[str, str], int] = {}


def _reject_time(reason: str, crate: str, now_ms: int) -> int:
    if len(_last_reject_ms) > 4096:  # a flood of crate names: keep only what can still collide
        for key in [k for k, ms in _last_reject_ms.items() if ms < now_ms]:
            del _last_reject_ms[key]
    ms = max(now_ms, _last_reject_ms.get((reason, crate), 0) + 1)
    _last_reject_ms[(reason, crate)] = ms
    return ms


def rejected_point(reason: str, crate: str | None, *, detail: str, topic: str, payload: bytes, now_ms: int) -> str:
    """``rejected``: a message refused for good, with a bounded excerpt of what it held.

    Its time is ``now_ms``, or a millisecond after the previous reject of the same crate and reason
    when that is later (a burst of rejects must not overwrite one another).
    """
    excerpt = payload[:EXCERPT_BYTES].decode("utf-8", "replace")
    fields: dict[str, FieldValue] = {
        "detail": detail[:500],
        "topic": topic[:200],
        "excerpt": excerpt,
        "bytes": len(payload),
    }
    crate = crate or ""
    return point("rejected", {"reason": reason, "crate": crate}, fields, _reject_time(reason, crate, now_ms))


def health_point(client_id: str, fields: dict[str, FieldValue], now_ms: int) -> str:
    """``gateway``: the gateway's own health, every monitoring interval."""
    return point("gateway", {"gateway": client_id}, fields, now_ms)


def shipment_point(shipment: str, crate: str, details: Mapping[str, str], ts_ms: int) -> str:
    """``shipment``: the record of the shipment ``crate`` is assigned to (``[shipments]`` of the config).

    Fields origin, destination, product, those known (``details`` must hold one); time: when the
    gateway first saw the crate in this run. Written once per crate per run: the newest point
    of a shipment is its current record, and rewriting an unchanged record costs a point a run.
    """
    return point("shipment", {"shipment": shipment, "crate": crate}, details, ts_ms)
