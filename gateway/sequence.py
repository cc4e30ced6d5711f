"""Per-crate sequence accounting: duplicates, gaps, late arrivals, and what may be acknowledged.

A crate numbers its messages 1, 2, 3...; the gateway stores each seq once. A jump
opens a gap (first..last missing); late messages fill it, and it closes when
none is missing any more. A seq already seen is a duplicate only if its
timestamp is not newer than the newest the crate has sent (a retransmission
repeats the original's ts); a lower seq with a newer ts means the crate started
numbering again (replaced spool or device, a new shipment): a RESTART.
Known limit: a crate whose clock ran ahead (within the future tolerance) and
that then starts numbering again is taken for a retransmission until real time
passes its newest ts; its new messages in that window are dropped as duplicates.
``stored_through`` is the highest seq N such that every seq up to N has been
seen: the crate may prune its spool up to there.
A crate's telemetry may say from which seq it still holds readings unconfirmed
(``held_from``, its spool's low-water mark). Meeting a crate without state (first
sight, state lost or forgotten, a RESTART) the gateway cannot know what came
before the first seq it sees: it opens an *assumed* gap from ``held_from``, so it
never confirms what the crate holds and it has not stored. Without the field
(older agents) the first seq seen is taken as the start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["DUPLICATE", "LATE", "MAX_OPEN_GAPS", "NEW", "RESTART", "Gap", "SeqTracker"]

NEW: Final = 0
LATE: Final = 1
DUPLICATE: Final = 2
RESTART: Final = 3
MAX_OPEN_GAPS: Final = 1000  # per crate; beyond this the oldest gap is abandoned (stays visible, stops blocking)


@dataclass(slots=True)
class Gap:
    """Seqs ``first``..``last`` were skipped; ``missing`` holds the [a, b] runs still not seen.

    ``ts`` is the time of the message that revealed the gap: with the crate, the gap point's identity.
    """

    first: int
    last: int
    ts: int
    missing: list[list[int]] = field(default_factory=list)
    state: str = "open"
    lost: int = 0  # seqs the crate said it dropped (its spool overflowed or lost them): never coming
    # opened from the crate's held_from at first sight, not from a seq seen skipped: see ``SeqTracker.settle``
    assumed: bool = False

    @property
    def remaining(self) -> int:
        """How many seqs of the gap are still missing."""
        return sum(b - a + 1 for a, b in self.missing)

    def fill(self, seq: int) -> bool:
        """Account for a late ``seq``; False when it is not missing (a duplicate)."""
        for i, (a, b) in enumerate(self.missing):
            if a <= seq <= b:
                runs = [[a, seq - 1]] if a < seq else []
                if seq < b:
                    runs.append([seq + 1, b])
                self.missing[i : i + 1] = runs
                if not self.missing:
                    self.state = "closed"
                return True
        return False

    def abandon(self) -> None:
        """Stop waiting for it (too many open gaps, or the crate numbers afresh): it stays visible as abandoned."""
        self.state = "abandoned"

    def settle_below(self, held_from: int) -> None:
        """Stop waiting for seqs below ``held_from`` (the crate holds none any more); closed when none is left."""
        self.missing = [[max(a, held_from), b] for a, b in self.missing if b >= held_from]
        if not self.missing:
            self.state = "closed"

    def lose(self, first: int, last: int) -> int:
        """The crate says seqs ``first``..``last`` are gone for good: how many of those this gap still awaited.

        A gap left with nothing to wait for is ``lost``.
        """
        runs = []
        for a, b in self.missing:
            if a < first:
                runs.append([a, min(b, first - 1)])
            if b > last:
                runs.append([max(a, last + 1), b])
        dropped = self.remaining - sum(b - a + 1 for a, b in runs)
        if dropped:
            self.missing = runs
            self.lost += dropped
            if not runs:
                self.state = "lost"
        return dropped


class SeqTracker:
    """Sequence state of one crate."""

    __slots__ = ("gap_ts", "gaps", "highest", "newest_ts")

    def __init__(self) -> None:
        self.highest: int | None = None
        self.newest_ts = 0
        self.gaps: list[Gap] = []  # open gaps, oldest first
        self.gap_ts = 0  # the time of the newest gap: every gap's time is later (see _gap)

    def _gap(self, first: int, last: int, ts: int, assumed: bool = False) -> Gap:
        """A new gap at ``ts``, or 1 ms after the crate's previous gap: a gap point's identity is its crate
        and time, so two gaps revealed in the same millisecond (a crate that drops seqs twice in a row)
        would overwrite each other."""
        self.gap_ts = max(ts, self.gap_ts + 1)
        return Gap(first, last, self.gap_ts, [[first, last]], assumed=assumed)

    def _assume(self, held_from: int | None, seq: int, ts: int) -> Gap | None:
        """Meeting the crate at ``seq``: the gap of what it still holds below it (``held_from``..seq-1), if any."""
        if held_from is None or held_from >= seq:
            return None
        gap = self._gap(held_from, seq - 1, ts, assumed=True)
        self.gaps.append(gap)
        return gap

    def accept(self, seq: int, ts: int, held_from: int | None = None) -> tuple[int, Gap | None]:
        """Classify ``seq`` as NEW, LATE, DUPLICATE or RESTART; return with it the gap it opened or filled.

        ``held_from`` (the crate's low-water mark) counts only when the crate has no state yet.
        After RESTART the caller calls ``restart()``; nothing has been recorded yet.
        """
        highest = self.highest
        if highest is None:
            self.highest = seq
            self.newest_ts = max(ts, self.newest_ts)
            return NEW, self._assume(held_from, seq, ts)
        if seq == highest + 1:
            self.highest = seq
            self.newest_ts = max(ts, self.newest_ts)
            return NEW, None
        if seq > highest:
            self.highest = seq
            self.newest_ts = max(ts, self.newest_ts)
            gap = self._gap(highest + 1, seq - 1, ts)
            self.gaps.append(gap)
            if len(self.gaps) > MAX_OPEN_GAPS:
                # the caller writes the newest gap; the abandoned one is reported by ``abandoned()``
                self.gaps[0].abandon()
            return NEW, gap
        for gap in self.gaps:
            if gap.first <= seq <= gap.last:
                if not gap.fill(seq):
                    return DUPLICATE, None
                if gap.state == "closed":
                    self.gaps.remove(gap)
                return LATE, gap
        if ts > self.newest_ts:
            return RESTART, None
        return DUPLICATE, None

    def restart(self, seq: int, ts: int, held_from: int | None = None) -> list[Gap]:
        """Start counting again at ``seq``; return the gaps to write: the open ones, abandoned, and the
        assumed gap of what the crate still holds below ``seq`` (a new numbering is met like a new crate)."""
        abandoned = self.gaps
        for gap in abandoned:
            gap.abandon()
        self.gaps = []
        self.highest = seq
        self.newest_ts = ts
        assumed = self._assume(held_from, seq, ts)
        return abandoned if assumed is None else [*abandoned, assumed]

    def settle(self, held_from: int | None) -> Gap | None:
        """The crate holds nothing below ``held_from`` any more: the assumed gap stops waiting for those seqs.

        Returns the gap when it changed (write it again). A message that waited on the broker carries the
        ``held_from`` of when it was sent, before the crate heard the last acks of a gateway whose state
        was then lost: the assumed gap may start too low. The seqs a later, higher ``held_from`` gives up
        were settled before this gateway met the crate (stored, or declared lost by the crate) and will
        not come again. The gap closes once what the crate held has arrived. A gap of seqs seen skipped
        is left alone: the crate announces in a gap event what it lost. A ``held_from`` below
        ``stored_through`` is the crate not having heard the latest ack yet: nothing to do.
        """
        if held_from is None or not self.gaps:
            return None
        gap = self.gaps[0]  # an assumed gap starts below everything the crate sent since: the oldest
        if not gap.assumed or gap.missing[0][0] >= held_from:
            return None
        gap.settle_below(held_from)
        if gap.state == "closed":
            self.gaps.remove(gap)
        return gap

    def lose(self, first: int, last: int, ts: int) -> list[Gap]:
        """The crate says seqs ``first``..``last`` are gone for good: stop waiting for them.

        Returns the gaps that changed (write them again). A gap left with nothing to wait for
        is ``lost`` when some of it never came; seqs beyond ``highest`` become such a gap at once.
        """
        if last < first:
            return []
        if self.highest is None or last > self.highest:
            start = first if self.highest is None else self.highest + 1
            self.gaps.append(self._gap(start, last, ts))
            self.highest = last
        changed = []
        for gap in list(self.gaps):
            if gap.last < first or gap.first > last:
                continue
            if not gap.lose(first, last):
                continue
            if gap.state == "lost":
                self.gaps.remove(gap)
            changed.append(gap)
        return changed

    def abandoned(self) -> list[Gap]:
        """Remove and return gaps abandoned for exceeding ``MAX_OPEN_GAPS`` (write them once more)."""
        out = [g for g in self.gaps if g.state == "abandoned"]
        if out:
            self.gaps = [g for g in self.gaps if g.state != "abandoned"]
        return out

    @property
    def stored_through(self) -> int | None:
        """Every seq up to this one has been seen (None before the first message)."""
        if self.gaps:
            return self.gaps[0].missing[0][0] - 1
        return self.highest

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state for the state file."""
        return {
            "highest": self.highest,
            "newest_ts": self.newest_ts,
            "gap_ts": self.gap_ts,
            "gaps": [[g.first, g.last, g.ts, g.missing, g.lost, g.assumed] for g in self.gaps],
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Resume from ``snapshot()``."""
        highest = snapshot.get("highest")
        self.highest = int(highest) if highest is not None else None
        self.newest_ts = int(snapshot.get("newest_ts", 0))
        self.gaps = [
            Gap(
                int(f),
                int(la),
                int(ts),
                [[int(a), int(b)] for a, b in m],
                lost=int(rest[0]) if rest else 0,
                assumed=bool(rest[1]) if len(rest) > 1 else False,
            )
            for f, la, ts, m, *rest in snapshot["gaps"]
        ]
        self.gap_ts = int(snapshot.get("gap_ts", max((g.ts for g in self.gaps), default=0)))
