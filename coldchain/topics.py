"""MQTT topic names of the v1 contract, and the identifiers that go into them."""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from coldchain.errors import WireFormatError

__all__ = [
    "ACKS_FILTER",
    "ALARM",
    "CRATE_KINDS",
    "EVENTS",
    "IDENTIFIER_RULE",
    "NO_ROUTE",
    "OTHER_CRATE",
    "PARTITIONED_TELEMETRY_FILTER",
    "REJECTED",
    "ROOT",
    "SERVICE_LOGIN_PREFIX",
    "STAFF_ACK",
    "STAFF_LOGIN_PREFIX",
    "STATUS",
    "STORAGE_ACK",
    "TELEMETRY",
    "TELEMETRY_FILTER",
    "Route",
    "alarm_topic",
    "events_topic",
    "parse_topic",
    "refuse_reserved_crate",
    "rejected_topic",
    "reserved_login",
    "staff_ack_topic",
    "status_topic",
    "storage_ack_topic",
    "telemetry_topic",
    "unpartitioned",
    "valid_identifier",
]

ROOT: Final = "coldchain/v1"
TELEMETRY_FILTER: Final = f"{ROOT}/crates/+/telemetry"
REJECTED_TOPIC: Final = f"{ROOT}/rejected"
ACKS_FILTER: Final = f"{ROOT}/acks/+/+/+"
# The NATS cluster's nodes map a crate's telemetry into its partition (docs/cluster.md): an MQTT
# subscriber receives it there, under cc/p/<partition>/ and then the topic the crate published on.
_PARTITION_PREFIX: Final = "cc/p/"
PARTITIONED_TELEMETRY_FILTER: Final = f"{_PARTITION_PREFIX}+/{TELEMETRY_FILTER}"

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


def unpartitioned(topic: str) -> str:
    """The topic a message was published on, for one the cluster moved into a partition; others as they are."""
    if not topic.startswith(_PARTITION_PREFIX):
        return topic
    _, _, rest = topic[len(_PARTITION_PREFIX) :].partition("/")
    return rest or topic


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


def rejected_topic() -> str:
    """Where the gateway reports messages it refused, with the reason."""
    return REJECTED_TOPIC


# What a topic is about (``Route.kind``): a crate's own topics by their last level, then the others
TELEMETRY: Final = "telemetry"
STATUS: Final = "status"
EVENTS: Final = "events"
STORAGE_ACK: Final = "ack"
OTHER_CRATE: Final = "crate"  # coldchain/v1/crates/{crate}/{anything else}
CRATE_KINDS: Final = frozenset({TELEMETRY, STATUS, EVENTS, STORAGE_ACK, OTHER_CRATE})
ALARM: Final = "alarm"
STAFF_ACK: Final = "staff_ack"
REJECTED: Final = "rejected"


class Route(NamedTuple):
    """What a topic of the v1 contract is about: its ``kind`` and the ids its levels name ("" for none).

    A named tuple, not a dataclass: the gateway parses one per message on its hot path.
    """

    kind: str  # one of the kinds above, "" for a topic outside the contract
    crate: str = ""
    rule: str = ""
    sensor: str = ""

    @property
    def own_crate(self) -> str | None:
        """The crate of one of its own topics (``coldchain/v1/crates/{crate}/…``); None for the others."""
        return self.crate if self.kind in CRATE_KINDS else None

    @property
    def ids(self) -> tuple[str, str, str]:
        """(crate, rule, sensor) of an alarm or staff ack topic."""
        return self.crate, self.rule, self.sensor


NO_ROUTE: Final = Route("")
_tuple_new: Final = tuple.__new__
_CRATE_LEVELS: Final = {TELEMETRY: TELEMETRY, STATUS: STATUS, EVENTS: EVENTS, STORAGE_ACK: STORAGE_ACK}


def parse_topic(topic: str) -> Route:
    """The route of ``topic``: ``coldchain/v1/crates/{crate}/{kind}``, ``.../alarms/{crate}/{rule}/{sensor}``,
    ``.../acks/{crate}/{rule}/{sensor}`` or ``.../rejected``; NO_ROUTE for any other topic.

    The levels are taken as they are: whoever needs them to be valid ids checks ``valid_identifier``
    (a refusal then names the problem).
    """
    parts = topic.split("/")
    depth = len(parts)
    if depth == 5 and parts[2] == "crates" and parts[0] == "coldchain" and parts[1] == "v1":
        # the gateway's hot path (telemetry, once per message): tuple.__new__ skips NamedTuple's argument handling
        return _tuple_new(Route, (_CRATE_LEVELS.get(parts[4], OTHER_CRATE), parts[3], "", ""))
    if depth < 3 or parts[0] != "coldchain" or parts[1] != "v1":
        return NO_ROUTE
    area = parts[2]
    if depth == 6 and area in ("alarms", "acks"):
        return Route(ALARM if area == "alarms" else STAFF_ACK, parts[3], parts[4], parts[5])
    if area == "rejected" and depth == 3:
        return Route(REJECTED)
    return NO_ROUTE
