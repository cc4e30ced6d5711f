"""The per-crate chart's data: aligned series, the profile's limit bands and the excursions to shade."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coldchain.profiles import Profile

__all__ = ["Bucket", "chart_data", "excursions", "limit_bands"]


@dataclass(frozen=True, slots=True)
class Bucket:
    """The highest and lowest reading of one sensor in one time bucket (one reading when unaggregated)."""

    sensor: str
    ts: int
    hi: float
    lo: float


def limit_bands(profile: Profile) -> list[dict[str, Any]]:
    """One band per rule: everything above a ``high`` limit or below a ``low`` limit."""
    return [
        {"rule": r.name, "kind": r.kind, "threshold_c": r.threshold_c, "severity": r.severity} for r in profile.rules
    ]


def excursions(buckets: list[Bucket], profile: Profile, bucket_ms: int) -> list[dict[str, Any]]:
    """Time spans where any sensor was outside a rule's limit, per rule, merged across sensors.

    A span starts at the first bucket outside and ends where the next inside bucket starts
    (``bucket_ms`` after the last outside one when the data ends outside).
    """
    spans: list[dict[str, Any]] = []
    times = sorted({b.ts for b in buckets})
    for rule in profile.rules:
        outside = {b.ts for b in buckets if rule.breached(b.hi if rule.kind == "high" else b.lo)}
        start: int | None = None
        for ts in times:
            if ts in outside and start is None:
                start = ts
            elif ts not in outside and start is not None:
                spans.append({"rule": rule.name, "severity": rule.severity, "start": start, "end": ts})
                start = None
        if start is not None:
            spans.append({"rule": rule.name, "severity": rule.severity, "start": start, "end": times[-1] + bucket_ms})
    return spans


def chart_data(buckets: list[Bucket], profile: Profile, bucket_ms: int) -> dict[str, Any]:
    """uPlot's aligned columns (x in seconds, one hi and one lo column per sensor) plus bands and spans."""
    times = sorted({b.ts for b in buckets})
    index = {ts: i for i, ts in enumerate(times)}
    sensors = sorted({b.sensor for b in buckets})
    columns: dict[str, list[float | None]] = {}
    for sensor in sensors:
        columns[f"{sensor} max"] = [None] * len(times)
        columns[f"{sensor} min"] = [None] * len(times)
    for b in buckets:
        columns[f"{b.sensor} max"][index[b.ts]] = b.hi
        columns[f"{b.sensor} min"][index[b.ts]] = b.lo
    return {
        "x": [ts / 1000 for ts in times],
        "series": [{"label": label, "values": values} for label, values in columns.items()],
        "sensors": sensors,
        "bucket_ms": bucket_ms,
        "profile": profile.name,
        "bands": limit_bands(profile),
        "excursions": excursions(buckets, profile, bucket_ms),
    }
