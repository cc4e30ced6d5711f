"""Where a record is silent or unsure: the holes that keep a verdict from being "within profile".

A stretch the record cannot account for says nothing about the product, so it must never pass
as good. Four kinds are found in what InfluxDB holds:

- ``gap``: messages of a crate the gateway never stored (a ``gap`` point with seqs still
  ``missing`` or ``lost``; a gap that late messages filled completely is no hole);
  it spans from the crate's stored message just before the missing seqs to the one just after;
- ``stale``: two consecutive messages of a crate further apart than the profile's stale limit
  (its ``stale`` rule's ``after_s``), with no gap to explain it (a crate that stopped sampling);
- ``fault``: a run of a probe's fault readings (``OPEN``, ``SHORT``, ``RANGE``), from the first
  until the probe's next good reading;
- ``time``: a run of a crate's messages taken while its wall clock was unset (readings stored with
  ``ts_corrected`` or ``ts_uncertain``), from the first to the last of the run. Corrected times were
  restamped from the crate's monotonic clock, so they are right to within its drift, yet no clock
  anyone can check dated them: QA decides whether that is good enough, as for any hole. Uncertain
  times are the unset clock's: nothing shows when those readings were taken.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from coldchain.alarms.rules import StaleRule
from coldchain.profiles import Profile
from coldchain.record.stats import format_duration
from coldchain.wire import TS_CORRECTED

__all__ = [
    "FAULT",
    "GAP",
    "STALE",
    "TIME",
    "GapFact",
    "Hole",
    "fault_holes",
    "gap_holes",
    "silent_holes",
    "stale_limit_ms",
    "time_holes",
]

GAP: Final = "gap"
STALE: Final = "stale"
FAULT: Final = "fault"
TIME: Final = "time"
CLOSED: Final = "closed"

# ts_ms, first_seq, last_seq, state, missing (still awaited), lost (declared gone by the crate)
GapFact = tuple[int, int | None, int | None, str | None, int | None, int | None]
Message = tuple[int, int | None]  # ts_ms, seq of one stored message of a crate


def _utc(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (f".{ms % 1000:03d}Z" if ms % 1000 else "Z")


@dataclass(frozen=True, slots=True)
class Hole:
    """A stretch of the record that says nothing about the product, and why."""

    kind: str  # GAP, STALE, FAULT or TIME
    where: str  # the crate, or the probe's label
    start_ms: int
    end_ms: int
    detail: str

    @property
    def duration_ms(self) -> int:
        """How long the record is silent."""
        return self.end_ms - self.start_ms

    def describe(self) -> str:
        """One line for a verdict's reasons."""
        return (
            f"{self.where}: {self.detail}, {_utc(self.start_ms)} to {_utc(self.end_ms)} "
            f"({format_duration(self.duration_ms)})"
        )


def stale_limit_ms(profile: Profile | None) -> int | None:
    """The longest a crate of this profile may go without a reading (its tightest ``stale`` rule); None: unset."""
    limits = [rule.after_s for rule in profile.extra_rules if isinstance(rule, StaleRule)] if profile else []
    return int(min(limits) * 1000) if limits else None


def _unstored(first: int, last: int, state: str | None, missing: int | None, lost: int | None) -> str | None:
    """What a gap point says is not stored, or None when everything arrived after all."""
    awaited = missing if missing is not None else (0 if state in (CLOSED, "lost") else last - first + 1)
    parts = [f"{awaited} still awaited"] if awaited else []
    parts += [f"{lost} lost for good (the crate dropped them)"] if lost else []
    if not parts:
        return None
    if state == "abandoned":
        parts.append("no longer tracked by the gateway")
    return f"seq {first}..{last} not all stored: " + ", ".join(parts)


def gap_holes(crate: str, gaps: Sequence[GapFact], messages: Sequence[Message]) -> list[Hole]:
    """The gaps of ``crate`` with messages never stored, timed by the stored messages next to them in seq order."""
    by_seq = sorted((seq, ts) for ts, seq in messages if seq is not None)
    seqs = [seq for seq, _ in by_seq]
    holes = []
    for ts, first, last, state, missing, lost in gaps:
        detail = None if first is None or last is None else _unstored(first, last, state, missing, lost)
        if detail is None or first is None or last is None:
            continue
        before, after = bisect.bisect_left(seqs, first), bisect.bisect_right(seqs, last)
        end = by_seq[after][1] if after < len(by_seq) else ts
        # nothing stored before it: the hole began at the record's edge
        start = by_seq[before - 1][1] if before > 0 else min(ts, end)
        holes.append(Hole(GAP, crate, start, end, detail))
    return holes


def silent_holes(crate: str, times: Sequence[int], limit_ms: int, explained: Sequence[Hole] = ()) -> list[Hole]:
    """Stretches longer than ``limit_ms`` between consecutive message ``times`` of ``crate`` (sorted),
    except those within a hole of ``explained`` (the crate's gaps)."""
    holes = []
    for a, b in itertools.pairwise(times):
        if b - a > limit_ms and not any(h.start_ms <= a and b <= h.end_ms for h in explained):
            detail = f"no reading for {format_duration(b - a)} (stale limit {format_duration(limit_ms)})"
            holes.append(Hole(STALE, crate, a, b, detail))
    return holes


def fault_holes(probe: str, samples: Sequence[tuple[int, str | None]]) -> list[Hole]:
    """Runs of fault readings of one probe: ``samples`` are (ts_ms, fault or None for a good reading), sorted."""
    holes = []
    run: list[tuple[int, str]] = []
    for ts, fault in [*samples, (None, None)]:
        if fault is not None and ts is not None:
            run.append((ts, fault))
            continue
        if run:
            kinds = ", ".join(sorted({f for _, f in run}))
            end = ts if ts is not None else run[-1][0]
            detail = f"{len(run)} fault reading(s) ({kinds}): temperature unknown"
            holes.append(Hole(FAULT, probe, run[0][0], end, detail))
            run = []
    return holes


def _time_detail(count: int, flag: str) -> str:
    if flag == TS_CORRECTED:
        return (
            f"time corrected: {count} message(s) taken while the crate's clock was unset, restamped from its "
            "monotonic clock (right to within that clock's drift)"
        )
    return (
        f"time uncertain: {count} message(s) taken with the crate's clock unset in an earlier boot: their times "
        "are that unset clock's, not when they were taken"
    )


def time_holes(crate: str, messages: Sequence[tuple[int, str | None]]) -> list[Hole]:
    """Runs of ``crate``'s messages with the same time flag: ``messages`` are (ts_ms, ``ts_corrected``,
    ``ts_uncertain`` or None for a time from a set clock), sorted by time, one per message."""
    holes = []
    for flag, group in itertools.groupby(messages, key=lambda m: m[1]):
        if flag is None:
            continue
        run = [ts for ts, _ in group]
        holes.append(Hole(TIME, crate, run[0], run[-1], _time_detail(len(run), flag)))
    return holes
