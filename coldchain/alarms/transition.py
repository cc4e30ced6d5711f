"""A rule's transition: what every evaluator (and the crate's own threshold tracker) returns.

The alarm book (``coldchain.alarms.lifecycle``) turns transitions into alarms and their changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from coldchain.wire.alarms import ACTIVE, CLEARED

__all__ = ["ACTIVE", "CLEARED", "AlarmTransition"]


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """An alarm of any rule kind changed state at event time ``ts``.

    ``started_ts`` is when the condition began: with crate, rule and sensor, the
    alarm's identity. ``seq`` is the reading's that caused it (None for time-driven
    rules); ``predicted_ts`` when a prediction rule expects the target to be reached.
    """

    rule: str
    kind: str
    severity: str
    sensor: str
    state: str
    ts: int
    started_ts: int
    seq: int | None = None
    value_c: float | None = None
    threshold_c: float | None = None
    detail: str = ""
    predicted_ts: int | None = None
