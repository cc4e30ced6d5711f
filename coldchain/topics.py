"""MQTT topic names of the v1 contract, and the identifiers that go into them."""

from __future__ import annotations

import re
from typing import Final

from coldchain.errors import WireFormatError

__all__ = [
    "ACKS_FILTER",
    "IDENTIFIER_RULE",
    "ROOT",
    "SERVICE_LOGIN_PREFIX",
    "STAFF_LOGIN_PREFIX",
    "TELEMETRY_FILTER",
    "acks_from_topic",
    "alarm_topic",
    "crate_from_topic",
    "events_topic",
    "refuse_reserved_crate",
    "rejected_topic",
    "reserved_login",
    "staff_ack_topic",
    "status_topic",
    "storage_ack_topic",
    "telemetry_topic",
    "valid_identifier",
]

ROOT: Final = "coldchain/v1"
TELEMETRY_FILTER: Final = f"{ROOT}/crates/+/telemetry"
REJECTED_TOPIC: Final = f"{ROOT}/rejected"
ACKS_FILTER: Final = f"{ROOT}/acks/+/+/+"

# Crate, sensor and rule ids become topic levels and MQTT usernames: keep them to a
# safe alphabet so a name can never be a wildcard ('+', '#') or a level separator ('/').
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# what ``valid_identifier`` requires, in the words every error about an id uses
IDENTIFIER_RULE: Final = "1-64 of [A-Za-z0-9_.-], starting with a letter or digit"


# Broker logins that are not crates: people (``staff.alice``) and services (``coldchain-gateway``,
# ``coldchain-board``). The broker's ACL lets every login write coldchain/v1/crates/{its name}/...,
# and mosquitto's ACL cannot exclude a login from a pattern: so these names are never crate ids.
STAFF_LOGIN_PREFIX: Final = "staff."
SERVICE_LOGIN_PREFIX: Final = "coldchain-"


def valid_identifier(name: str) -> bool:
    """True when ``name`` may be used as a crate, sensor or rule id (``IDENTIFIER_RULE``)."""
    return _IDENTIFIER.fullmatch(name) is not None


def reserved_login(name: str) -> bool:
    """True when ``name`` is a staff or service login (``staff.*``, ``coldchain-*``): never a crate id."""
    return name.startswith((STAFF_LOGIN_PREFIX, SERVICE_LOGIN_PREFIX))


def refuse_reserved_crate(topic_crate: str) -> None:
    """WireFormatError ``reserved_crate`` when a crate topic names a staff or service login."""
    if reserved_login(topic_crate):
        raise WireFormatError("reserved_crate", f"{topic_crate[:70]!r} is a staff or service login, never a crate")


def telemetry_topic(crate: str) -> str:
    """Where crate ``crate`` publishes its readings."""
    return f"{ROOT}/crates/{crate}/telemetry"


def status_topic(crate: str) -> str:
    """Retained online/offline state of a crate (the offline one is its last will)."""
    return f"{ROOT}/crates/{crate}/status"


def events_topic(crate: str) -> str:
    """Discrete crate events (lid, gap, excursion seen locally)."""
    return f"{ROOT}/crates/{crate}/events"


def storage_ack_topic(crate: str) -> str:
    """The gateway's end-to-end acknowledgement: every seq up to N is stored."""
    return f"{ROOT}/crates/{crate}/ack"


def alarm_topic(crate: str, rule: str, sensor: str) -> str:
    """Retained current state of one alarm; ``sensor`` is ``crate`` for whole-crate rules."""
    return f"{ROOT}/alarms/{crate}/{rule}/{sensor}"


def staff_ack_topic(crate: str, rule: str, sensor: str) -> str:
    """Where staff acknowledge an alarm: a root of its own, never mixed with retained alarm state."""
    return f"{ROOT}/acks/{crate}/{rule}/{sensor}"


def acks_from_topic(topic: str) -> tuple[str, str, str] | None:
    """(crate, rule, sensor) of a ``coldchain/v1/acks/{crate}/{rule}/{sensor}`` topic, or None."""
    parts = topic.split("/")
    if len(parts) == 6 and parts[:3] == ["coldchain", "v1", "acks"]:
        return parts[3], parts[4], parts[5]
    return None


def rejected_topic() -> str:
    """Where the gateway reports messages it refused, with the reason."""
    return REJECTED_TOPIC


def crate_from_topic(topic: str) -> str | None:
    """The crate level of a ``coldchain/v1/crates/{crate}/...`` topic, or None."""
    parts = topic.split("/")
    if len(parts) >= 4 and parts[0] == "coldchain" and parts[1] == "v1" and parts[2] == "crates":
        return parts[3]
    return None
