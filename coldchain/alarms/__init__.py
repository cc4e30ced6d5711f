"""Alarms: a product profile's rules applied to what crates report, and each alarm's lifecycle.

- ``rules``: the rule kinds beyond the plain threshold, parsed from a profile.
- ``threshold``: excursion arithmetic of a threshold rule (the crate's agent runs it too).
- ``evaluators`` (readings, status, lid), ``trend`` (rate, prediction), ``motion`` (tilt, shock),
  ``stuck`` (a probe repeating one value): each turns input into transitions.
- ``crate_monitor``: one crate's evaluators together; ``engine``: every crate's monitor and the
  alarm book behind one interface; ``lifecycle``: the book (active, acknowledged, cleared).
- ``ack_answer``: the gateway's answer to a staff acknowledgement, as its sender recognises it.
"""

__all__ = [
    "ack_answer",
    "crate_monitor",
    "engine",
    "evaluators",
    "lifecycle",
    "motion",
    "rules",
    "stuck",
    "threshold",
    "trend",
]
