"""An alarm as its retained message tells it: the one decoder the board and ``coldchain alerts`` share.

The gateway retains each alarm's current state on ``coldchain/v1/alarms/{crate}/{rule}/{sensor}``
(the payload is ``coldchain.alarms.lifecycle.Alarm.to_wire``). Readers are tolerant: an optional field
a newer alarm engine adds is carried along, never a reason to drop an alarm. An alarm without
its identity, a known severity and state, or its times is refused with a WireFormatError whose
``reason`` is a stable label and whose ``detail`` names the field.

The decoder is total: any topic and any bytes give an AlarmView, None or a WireFormatError.
What it returns can always be shown: numbers are finite and within the wire's bounds (epoch
milliseconds below 2^53, seq below 2^63), NaN and Infinity are not JSON, and the body nests at
most MAX_DEPTH levels, so printing it or passing it on never fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final, TypeGuard

from coldchain.errors import WireFormatError
from coldchain.topics import ALARM, ROOT, alarm_topic, parse_topic, valid_identifier
from coldchain.wire.alarms import ACKNOWLEDGED, ACTIVE, ALARM_STATES, CLEARED, SEVERITIES
from coldchain.wire.common import json_object

__all__ = ["ALARM_STATES", "MAX_OPTIONAL_CHARS", "OPTIONAL_FIELDS", "AlarmView", "decode_alarm"]

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
# An alarm the engine publishes is well under 2 KB and three levels deep: far beyond either is not
# an alarm, and a body that deep could not be printed or passed on again (``alerts --json``).
MAX_ALARM_BYTES: Final = 65_536
MAX_DEPTH: Final = 32
MAX_EPOCH_MS: Final = 2**53  # exclusive: the wire's bound on epoch milliseconds (exact in a JS number)
MAX_SEQ: Final = 2**63  # exclusive: the wire's bound on seq

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

    @property
    def needs_review(self) -> bool:
        """Cleared before anyone acknowledged it (a late excursion included): a person must still look at it."""
        by = self.optional("acknowledged_by") or self.body.get("by")  # 'by': an older engine's name for it
        return self.state == CLEARED and not (isinstance(by, str) and by)

    def optional(self, name: str) -> Scalar | None:
        """One of OPTIONAL_FIELDS, or None when the payload does not carry it (usably)."""
        return dict(self.extra).get(name)


def _levels(topic: str) -> tuple[str, str, str]:
    route = parse_topic(topic)
    if route.kind != ALARM or not all(valid_identifier(level) for level in route.ids):
        raise WireFormatError("topic", f"{topic[:200]!r} is not {_PREFIX}{{crate}}/{{rule}}/{{sensor}} with valid ids")
    return route.ids


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (iteratively: no recursion to exhaust)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _object(payload: bytes) -> dict[str, Any]:
    # NaN and Infinity are not JSON (RFC 8259); accepted, they would make the board's page unparsable
    body = json_object(payload, MAX_ALARM_BYTES, constants=False)
    if _depth(body) > MAX_DEPTH:
        raise WireFormatError("json", f"payload nests more than {MAX_DEPTH} levels deep")
    return body


def _choice(body: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = body.get(key)
    if value not in choices:
        raise WireFormatError("schema", f"'{key}' is {_excerpt(value)}, not one of {list(choices)}")
    return str(value)


def _celsius(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    # bool is an int in Python but never a number on our wire
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WireFormatError("type", f"'{key}' must be a number or null, got {_excerpt(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        number = math.inf
    if not math.isfinite(number):  # 1e999 parses to inf
        raise WireFormatError("range", f"'{key}' must be a finite number, got {_excerpt(value)}")
    return number


def _integer(body: dict[str, Any], key: str, default: int | None = None, limit: int = MAX_SEQ) -> int | None:
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WireFormatError("type", f"'{key}' must be a non-negative integer, got {_excerpt(value)}")
    if value >= limit:
        raise WireFormatError("range", f"'{key}' {_excerpt(value)} is not below {limit}")
    return value


def _millis(body: dict[str, Any], key: str, default: int | None = None) -> int:
    value = _integer(body, key, default, MAX_EPOCH_MS)
    if value is None:
        raise WireFormatError("type", f"'{key}' must be epoch milliseconds, got null")
    return value


def _excerpt(value: Any) -> str:
    """A bounded rendering of a bad value for an error's detail (a hostile value may be huge)."""
    huge = isinstance(value, int) and abs(value) >= 10**30
    text = f"an integer of {len(str(value))} digits" if huge else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _encodable(text: str) -> bool:
    # a lone surrogate (a JSON escape such as \\ud800) cannot be written to a terminal or a UTF-8 page
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _usable(value: Any, key: str = "") -> TypeGuard[Scalar]:
    """An optional field people can be shown: a finite scalar, of bounded length, with text that can be printed.

    A time (``*_ts``) must be epoch milliseconds in the wire's range: readers do arithmetic with it.
    """
    if key.endswith("_ts"):
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_EPOCH_MS
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return len(value) <= MAX_OPTIONAL_CHARS and _encodable(value)
    return isinstance(value, (int, bool)) and len(str(value)) <= MAX_OPTIONAL_CHARS


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
        raise WireFormatError(
            "topic_mismatch", f"payload names crate/rule/sensor {_excerpt(named)}, the topic {topic!r}"
        )
    severity = _choice(body, "severity", SEVERITIES)
    state = _choice(body, "state", ALARM_STATES)
    ts = _millis(body, "ts")
    started_ts = _millis(body, "started_ts", ts)
    profile = body.get("profile")
    alarm_id = body.get("id")
    default_id = f"{crate}/{rule}/{sensor}/{started_ts}"
    extra = tuple((key, value) for key in OPTIONAL_FIELDS if _usable(value := body.get(key), key))
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
        profile=profile if isinstance(profile, str) and valid_identifier(profile) else None,
        alarm_id=alarm_id if _usable(alarm_id) and isinstance(alarm_id, str) else default_id,
        extra=extra,
        body=body,
    )
