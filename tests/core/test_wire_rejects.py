"""The ``rejected`` message: built in one place by the gateway, read back totally by whoever waits for its answer."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_wire_total import _outcome, hostile_values

from coldchain.errors import WireFormatError
from coldchain.wire import Rejected, decode_rejected, encode, request_of

REFUSAL = Rejected("ack_rejected", "no such alarm", 5, '{"v":1}', "coldchain/v1/acks/C-1/r/s", "C-1", "req-1")


def test_a_refusal_reads_back_as_built() -> None:
    """Every field of a refusal survives its encoding."""
    assert decode_rejected(encode(REFUSAL)) == REFUSAL


def test_a_refusal_bounds_its_detail_and_topic() -> None:
    """The detail is cut to 500 characters and the topic to 200, as the README's reject body has always been."""
    body = json.loads(encode(Rejected("json", "d" * 900, 5, "", "t" * 300)))
    assert (len(body["detail"]), len(body["topic"])) == (500, 200)


def test_a_stored_points_refusal_names_no_topic() -> None:
    """A point InfluxDB refused came on no topic: the body leaves topic, crate and request out."""
    assert json.loads(encode(Rejected("store_refused", "bad", 5, "line"))) == {
        "v": 1, "reason": "store_refused", "detail": "bad", "ts": 5, "excerpt": "line"
    }  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(list(REFUSAL.to_wire())), value=hostile_values)
def test_a_refusal_with_any_value_in_any_field_decodes_or_is_refused(key: str, value: Any) -> None:
    """A refusal with any field replaced: a Rejected of text fields, or the contract's error."""
    refusal = _outcome(decode_rejected, json.dumps(REFUSAL.to_wire() | {key: value}).encode())
    if isinstance(refusal, WireFormatError):
        assert refusal.reason == "json"  # nested beyond what the parser takes
        return
    assert all(isinstance(text, str) for text in (refusal.reason, refusal.detail, refusal.excerpt))
    assert refusal.request is None or isinstance(refusal.request, str)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=400))
def test_any_bytes_are_a_refusal_or_the_contracts_error(payload: bytes) -> None:
    """Arbitrary bytes: a Rejected or a WireFormatError, and a staff ack's request id or None."""
    assert isinstance(_outcome(decode_rejected, payload), (Rejected, WireFormatError))
    assert request_of(payload) is None or isinstance(request_of(payload), str)
