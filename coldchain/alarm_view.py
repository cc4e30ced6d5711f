"""An alarm as its retained message tells it: the one decoder the board and ``coldchain alerts`` share.

The gateway retains each alarm's current state on ``coldchain/v1/alarms/{crate}/{rule}/{sensor}``
(the payload is ``coldchain.lifecycle.Alarm.to_wire``). Readers are tolerant: an optional field
a newer alarm engine adds is carried along, never a reason to drop an alarm. An alarm without
its identity, a known severity and state, or its times is refused with a WireFormatError whose
``reason`` is a stable label and whose ``detail`` names the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from coldchain.errors import WireFormatError
from coldchain.excursions import ACTIVE, CLEARED
from coldchain.lifecycle import ACKNOWLEDGED
from coldchain.profiles import SEVERITIES
from coldchain.topics import ROOT, alarm_topic, valid_identifier

__all__ = ["ALARM_STATES", "MAX_OPTIONAL_CHARS", "OPTIONAL_FIELDS", "AlarmView", "decode_alarm"]

ALARM_STATES: Final = (ACTIVE, ACKNOWLEDGED, CLEARED)
_OPEN_STATES: Final = (ACTIVE, ACKNOWLEDGED)
_PREFIX: Final = f"{ROOT}/alarms/"
# The lifecycle's optional fields that people want to see (who acknowledged, the shipment, ...).
OPTIONAL_FIELDS: Final = (
    "kind",
    "detail",
    "late",
    "escalated",
    "predicted_ts",
    "ended_ts",
    "acknowledged_by",
    "acknowledged_ts",
    "note",
    "shipment",
    "origin",
    "destination",
    "product",
)
MAX_OPTIONAL_CHARS: Final = 1000  # one optional field longer than this is left out, not the alarm

Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class AlarmView:
    """The current state of one alarm, decoded from its retained message."""

    crate: str
    rule: str
    sensor: str  # ``crate`` for whole-crate rules
    severity: str
    state: str  # active, acknowledged or cleared
    value_c: float | None
    threshold_c: float | None
    ts: int  # event time of the transition (UTC epoch ms)
    seq: int | None  # of the reading behind it; None for rules about no reading (offline, stale)
    started_ts: int  # when the condition began: the alarm's identity with crate, rule, sensor
    profile: str | None
    alarm_id: str
    # OPTIONAL_FIELDS present in the payload as scalars of at most MAX_OPTIONAL_CHARS characters
    extra: tuple[tuple[str, Scalar], ...] = ()
    # the whole payload, newer fields included, for passing it on unchanged (``coldchain alerts --json``)
    body: dict[str, Any] = field(default_factory=dict, repr=False, hash=False)

    @property
    def key(self) -> tuple[str, str, str]:
        """Where it lives: one retained topic per (crate, rule, sensor)."""
        return (self.crate, self.rule, self.sensor)

    @property
    def topic(self) -> str:
        """The retained topic it was decoded from."""
        return alarm_topic(self.crate, self.rule, self.sensor)

    @property
    def is_open(self) -> bool:
        """Active or acknowledged: somebody still has to care."""
        return self.state in _OPEN_STATES

    def optional(self, name: str) -> Scalar | None:
        """One of OPTIONAL_FIELDS, or None when the payload does not carry it (usably)."""
        return dict(self.extra).get(name)


def _levels(topic: str) -> tuple[str, str, str]:
    levels = topic[len(_PREFIX) :].split("/") if topic.startswith(_PREFIX) else []
    if len(levels) != 3 or not all(valid_identifier(level) for level in levels):
        raise WireFormatError("topic", f"{topic!r} is not {_PREFIX}{{crate}}/{{rule}}/{{sensor}} with valid ids")
    return levels[0], levels[1], levels[2]


def _object(payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except RecursionError:
        raise WireFormatError("json", "payload is nested too deeply") from None
    except ValueError as exc:  # UnicodeDecodeError included
        raise WireFormatError("json", f"payload is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise WireFormatError("schema", f"payload is a JSON {type(body).__name__}, not an object")
    return body


def _choice(body: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = body.get(key)
    if value not in choices:
        raise WireFormatError("schema", f"'{key}' is {value!r}, not one of {list(choices)}")
    return str(value)


def _celsius(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    # bool is an int in Python but never a number on our wire
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WireFormatError("type", f"'{key}' must be a number or null, got {value!r}")
    return float(value)


def _integer(body: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WireFormatError("type", f"'{key}' must be a non-negative integer, got {value!r}")
    return value


def _millis(body: dict[str, Any], key: str, default: int | None = None) -> int:
    value = _integer(body, key, default)
    if value is None:
        raise WireFormatError("type", f"'{key}' must be epoch milliseconds, got null")
    return value


def decode_alarm(topic: str, payload: bytes) -> AlarmView | None:
    """The alarm retained on ``topic``; None for an empty payload (the retained alarm was removed).

    The payload must name the topic's crate, rule and sensor, a severity of the profiles and a
    lifecycle state; ``started_ts`` defaults to ``ts`` and ``id`` to the deterministic alarm id.
    """
    crate, rule, sensor = _levels(topic)
    if not payload:
        return None
    body = _object(payload)
    named = tuple(body.get(key) for key in ("crate", "rule", "sensor"))
    if named != (crate, rule, sensor):
        raise WireFormatError("topic_mismatch", f"payload names crate/rule/sensor {named!r}, the topic {topic!r}")
    severity = _choice(body, "severity", SEVERITIES)
    state = _choice(body, "state", ALARM_STATES)
    ts = _millis(body, "ts")
    started_ts = _millis(body, "started_ts", ts)
    profile = body.get("profile")
    alarm_id = body.get("id")
    extra = tuple(
        (key, value)
        for key in OPTIONAL_FIELDS
        if isinstance(value := body.get(key), (str, int, float, bool)) and len(str(value)) <= MAX_OPTIONAL_CHARS
    )
    return AlarmView(
        crate=crate,
        rule=rule,
        sensor=sensor,
        severity=severity,
        state=state,
        value_c=_celsius(body, "value_c"),
        threshold_c=_celsius(body, "threshold_c"),
        ts=ts,
        seq=_integer(body, "seq"),
        started_ts=started_ts,
        profile=profile if isinstance(profile, str) else None,
        alarm_id=alarm_id if isinstance(alarm_id, str) else f"{crate}/{rule}/{sensor}/{started_ts}",
        extra=extra,
        body=body,
    )
