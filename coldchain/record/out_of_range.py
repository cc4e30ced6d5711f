"""Time out of range: how long a probe (or any probe of a crate) spent outside its limits.

Readings are sample-and-hold: a value holds from its timestamp until the next
reading, but never longer than ``max_hold_ms`` (beyond that nobody knows, and
unknown time is not counted as out of range). Fault readings (value None) hold nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["held_intervals", "merge_intervals", "out_of_range_intervals", "time_out_of_range_ms", "total_ms"]

Sample = tuple[int, float | None]  # (event time in epoch ms, value in °C or None for a fault)
Interval = tuple[int, int]  # [start, end) in epoch ms


def held_intervals(
    samples: Sequence[Sample], start_ms: int, end_ms: int, max_hold_ms: int
) -> list[tuple[int, int, float]]:
    """``(start, end, value)`` spans each value held within [start_ms, end_ms); samples sorted by time."""
    out: list[tuple[int, int, float]] = []
    for i, (ts, value) in enumerate(samples):
        if value is None:
            continue
        until = ts + max_hold_ms
        if i + 1 < len(samples):
            until = min(until, samples[i + 1][0])
        lo, hi = max(ts, start_ms), min(until, end_ms)
        if lo < hi:
            out.append((lo, hi, value))
    return out


def out_of_range_intervals(
    samples: Sequence[Sample],
    low_c: float | None,
    high_c: float | None,
    start_ms: int,
    end_ms: int,
    *,
    max_hold_ms: int,
) -> list[Interval]:
    """Spans within [start_ms, end_ms) where the held value was below ``low_c`` or above ``high_c``."""
    spans = [
        (lo, hi)
        for lo, hi, value in held_intervals(samples, start_ms, end_ms, max_hold_ms)
        if (low_c is not None and value < low_c) or (high_c is not None and value > high_c)
    ]
    return merge_intervals(spans)


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping union of ``intervals`` (touching spans join)."""
    merged: list[Interval] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def total_ms(intervals: Iterable[Interval]) -> int:
    """Summed length of non-overlapping intervals."""
    return sum(hi - lo for lo, hi in intervals)


def time_out_of_range_ms(
    series: Iterable[Sequence[Sample]],
    low_c: float | None,
    high_c: float | None,
    start_ms: int,
    end_ms: int,
    *,
    max_hold_ms: int,
) -> int:
    """Time in [start_ms, end_ms) during which at least one of a crate's probes (``series``) was out of range.

    Two probes out of range at once count once: the crate was out of range for that time.
    """
    spans: list[Interval] = []
    for samples in series:
        spans += out_of_range_intervals(samples, low_c, high_c, start_ms, end_ms, max_hold_ms=max_hold_ms)
    return total_ms(merge_intervals(spans))
