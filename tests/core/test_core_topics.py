"""Topics: which names may be crate ids, and what a topic is about."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.errors import WireFormatError
from coldchain.topics import (
    ALARM,
    CRATE_KINDS,
    EVENTS,
    NO_ROUTE,
    OTHER_CRATE,
    REJECTED,
    STAFF_ACK,
    STATUS,
    STORAGE_ACK,
    TELEMETRY,
    Route,
    alarm_topic,
    events_topic,
    parse_topic,
    refuse_reserved_crate,
    rejected_topic,
    reserved_login,
    staff_ack_topic,
    status_topic,
    storage_ack_topic,
    telemetry_topic,
    unpartitioned,
    valid_identifier,
)


@pytest.mark.parametrize(
    ("name", "reserved"),
    [
        ("C-0042", False),
        ("staff", False),  # only the namespace with its dot is a login
        ("Staff.alice", False),  # mosquitto logins are case-sensitive: not a staff login
        ("coldchain", False),
        ("staff.alice", True),
        ("coldchain-gateway", True),
        ("coldchain-board", True),
    ],
)
def test_staff_and_service_logins_are_reserved(name: str, reserved: bool) -> None:
    """staff.* and coldchain-* are broker logins of people and services, never crate ids."""
    assert valid_identifier(name)
    assert reserved_login(name) is reserved


def test_a_reserved_crate_topic_is_refused_naming_the_login() -> None:
    """Refusing a staff login's crate topic gives the stable reason reserved_crate and says which login."""
    refuse_reserved_crate("C-0042")
    with pytest.raises(WireFormatError) as caught:
        refuse_reserved_crate("staff.alice")
    assert caught.value.reason == "reserved_crate"
    assert "'staff.alice'" in caught.value.detail


@pytest.mark.parametrize(
    ("topic", "route"),
    [
        (telemetry_topic("C-1"), Route(TELEMETRY, "C-1")),
        (status_topic("C-1"), Route(STATUS, "C-1")),
        (events_topic("C-1"), Route(EVENTS, "C-1")),
        (storage_ack_topic("C-1"), Route(STORAGE_ACK, "C-1")),
        ("coldchain/v1/crates/C-1/lid", Route(OTHER_CRATE, "C-1")),
        (alarm_topic("C-1", "critical_high", "probe1"), Route(ALARM, "C-1", "critical_high", "probe1")),
        (staff_ack_topic("C-1", "critical_high", "probe1"), Route(STAFF_ACK, "C-1", "critical_high", "probe1")),
        (rejected_topic(), Route(REJECTED)),
        ("coldchain/v1/crates/C-1/telemetry/x", NO_ROUTE),
        ("coldchain/v2/crates/C-1/telemetry", NO_ROUTE),
        ("coldchain/v1/alarms/C-1/r", NO_ROUTE),
    ],
)
def test_a_topic_is_parsed_once_into_its_route(topic: str, route: Route) -> None:
    """Every topic of the contract gives its kind and ids; any other topic gives NO_ROUTE."""
    assert parse_topic(topic) == route


def test_only_a_crates_own_topics_name_their_crate() -> None:
    """own_crate is the crate of coldchain/v1/crates/{crate}/…, None on alarm and ack topics."""
    assert parse_topic(status_topic("C-1")).own_crate == "C-1"
    assert parse_topic(alarm_topic("C-1", "r", "s")).own_crate is None


@settings(max_examples=300, deadline=None)
@given(
    topic=st.text(max_size=80)
    | st.lists(st.sampled_from(["coldchain", "v1", "crates", "alarms", "acks", "", "x"])).map("/".join)
)
def test_any_text_is_a_route(topic: str) -> None:
    """Parsing never raises: any text is a route of the contract or NO_ROUTE."""
    assert parse_topic(topic).kind in CRATE_KINDS | {ALARM, STAFF_ACK, REJECTED, ""}


def test_a_partitioned_topic_is_the_one_published() -> None:
    """The cluster's partition prefix is dropped; any other topic is left as it is."""
    assert unpartitioned("cc/p/7/coldchain/v1/crates/C-1/telemetry") == "coldchain/v1/crates/C-1/telemetry"
    for topic in ("coldchain/v1/crates/C-1/telemetry", "cc/p/7", "cc/p/", "cc/px/1/a", ""):
        assert unpartitioned(topic) == topic


@given(st.text(max_size=80))
@settings(max_examples=300)
def test_unpartitioned_is_total(topic: str) -> None:
    """Any topic at all gives a topic: itself, or what follows the partition's level."""
    out = unpartitioned(topic)
    assert out == topic or topic == f"cc/p/{topic[5:].partition('/')[0]}/{out}"
