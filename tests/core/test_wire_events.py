"""Crate events and statuses: one core decoder each, total, and the edge's events read back as built."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_wire_total import DOCUMENTED, _outcome, hostile_values

from coldchain.errors import WireFormatError
from coldchain.wire import CrateEvent, CrateStatus, decode_crate_status, decode_event, encode

NOW = 1_764_086_400_000
GAP = CrateEvent("C-1", NOW, "gap", {"reason": "spool_full", "first_seq": 3, "last_seq": 9, "count": 7})


def test_an_event_reads_back_as_built() -> None:
    """An event the edge builds decodes to the same event, its detail fields included."""
    assert decode_event(encode(GAP), "C-1", NOW) == GAP
    assert GAP.lost == (3, 9)


def test_an_event_is_published_as_the_readme_shows_it() -> None:
    """The common fields first, then the event's own: the bytes the agent has always sent."""
    assert encode(CrateEvent("C-1", 5, "lid_open")) == b'{"v":1,"crate":"C-1","ts":5,"event":"lid_open"}'


def test_a_gap_that_ends_before_it_starts_is_refused() -> None:
    """A gap event must say first_seq <= last_seq."""
    with pytest.raises(WireFormatError) as caught:
        decode_event(encode(CrateEvent("C-1", 5, "gap", {"first_seq": 9, "last_seq": 3})), "C-1")
    assert caught.value.reason == "schema"


def test_an_event_dated_beyond_the_tolerance_is_refused() -> None:
    """An event's ts dates stored points: beyond the future tolerance it is refused as future_ts."""
    with pytest.raises(WireFormatError) as caught:
        decode_event(encode(CrateEvent("C-1", NOW + 60_001, "lid_open")), "C-1", NOW, 60_000)
    assert caught.value.reason == "future_ts"


def test_a_status_names_its_state_and_falls_back_to_no_time() -> None:
    """A status decodes to its state; a ts that is no integer reads as 0 (readers date it by arrival)."""
    assert decode_crate_status(b'{"v":1,"crate":"C-1","state":"offline","ts":"x"}', "C-1") == CrateStatus(
        "C-1", "offline", 0
    )


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(["v", "crate", "ts", "event", "first_seq", "last_seq", "extra"]), value=hostile_values)
def test_an_event_with_any_value_in_any_field_decodes_or_is_refused(key: str, value: Any) -> None:
    """An event with any field replaced: a CrateEvent of the topic's crate, or a documented reason."""
    event = _outcome(lambda p: decode_event(p, "C-1", NOW), json.dumps(GAP.to_wire() | {key: value}).encode())
    if isinstance(event, WireFormatError):
        assert event.reason in DOCUMENTED
    else:
        assert (event.crate, isinstance(event.event, str)) == ("C-1", True)
        assert 0 < event.ts <= NOW + 300_000


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(["v", "crate", "state", "ts", "extra"]), value=hostile_values)
def test_a_status_with_any_value_in_any_field_decodes_or_is_refused(key: str, value: Any) -> None:
    """A status with any field replaced: online or offline of the topic's crate, or a documented reason."""
    body = {"v": 1, "crate": "C-1", "state": "online", "ts": NOW, key: value}
    status = _outcome(lambda p: decode_crate_status(p, "C-1"), json.dumps(body).encode())
    if isinstance(status, WireFormatError):
        assert status.reason in DOCUMENTED
    else:
        assert (status.crate, status.state in ("online", "offline")) == ("C-1", True)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=400))
def test_any_bytes_are_an_event_a_status_or_the_contracts_error(payload: bytes) -> None:
    """Arbitrary bytes: a value or a WireFormatError, from both decoders."""
    assert isinstance(_outcome(lambda p: decode_event(p, "C-1", NOW), payload), (CrateEvent, WireFormatError))
    assert isinstance(_outcome(lambda p: decode_crate_status(p, "C-1"), payload), (CrateStatus, WireFormatError))
