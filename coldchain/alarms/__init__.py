"""Alarms: a product profile's rules applied to what crates report, and each alarm's lifecycle.

- ``rules``: the rule kinds beyond the plain threshold, parsed from a profile.
- ``threshold``: excursion arithmetic of a threshold rule (the crate's agent runs it too).
- ``evaluators`` (readings, status, lid), ``trend`` (rate, prediction), ``motion`` (tilt, shock),
  ``stuck`` (a probe repeating one value): each turns input into transitions.
- ``crate_monitor``: one crate's evaluators together; ``engine``: every crate's monitor and the
  alarm book behind one interface; ``lifecycle``: the book (active, acknowledged, cleared).
- ``ack_answer``: the gateway's answer to a staff acknowledgement, as its sender recognises it.

One type per concept, in the order an alarm goes through them:

- ``AlarmTransition`` (``transition``): a rule's alarm changed state (active or cleared) at an event
  time; what every evaluator, and the crate's own threshold tracker, returns.
- ``Alarm`` (``lifecycle``): the alarm as the book holds it now (active, acknowledged or cleared,
  who acknowledged it, whether it is late or escalated); the gateway retains it as the wire's alarm
  message (``coldchain.wire.encode_alarm``).
- ``AlarmChange`` (``lifecycle``): something people must hear of (raised, acknowledged, cleared,
  escalated), with the ``Alarm`` after the change: what the engine returns to be published,
  stored and notified.
- ``AlarmView`` (``coldchain.wire.alarm_view``): the retained alarm message as its readers (the
  board, ``coldchain alerts``, ``coldchain ack``) decode it, tolerant of newer optional fields.
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
