"""The facts that come after a crate encoded a message are set on its spooled bytes by the core."""

from __future__ import annotations

import json

from coldchain.signing import verify
from coldchain.wire import (
    Reading,
    Telemetry,
    amended,
    decode_telemetry,
    encode,
    restamped,
    signed,
    with_powered_on,
)

SPOOLED = encode(Telemetry("C-1", 4, 10_000, (Reading("probe1", -160.5),), powered_on=9_000))


def test_a_restamp_of_the_same_boot_moves_switch_on_with_the_sample_and_flags_it() -> None:
    """Dated from the same boot's monotonic clock: ts is set, powered_on keeps its distance, ts_corrected."""
    payload, ts = restamped(SPOOLED, 1_764_086_400_000)
    message = decode_telemetry(payload)
    assert (ts, message.ts, message.powered_on, message.ts_flag) == (
        1_764_086_400_000, 1_764_086_400_000, 1_764_086_399_000, "ts_corrected"
    )  # fmt: skip


def test_a_sample_of_an_earlier_boot_keeps_its_time_and_is_flagged_uncertain() -> None:
    """No known relation to now: ts stays, ts_uncertain is set."""
    payload, ts = restamped(SPOOLED, None)
    assert (ts, decode_telemetry(payload).ts_flag) == (10_000, "ts_uncertain")


def test_a_switch_on_time_is_set_only_on_the_sample_it_belongs_to() -> None:
    """powered_on goes onto the spooled sample of that ts; a row dated otherwise is left alone."""
    assert decode_telemetry(with_powered_on(SPOOLED, 10_000, 9_500) or b"").powered_on == 9_500
    assert with_powered_on(SPOOLED, 10_001, 9_500) is None


def test_a_renumbered_message_changes_only_its_seq() -> None:
    """A new seq after a reset leaves every other field as it was."""
    assert decode_telemetry(amended(SPOOLED, {"seq": 40})) == Telemetry(
        "C-1", 40, 10_000, (Reading("probe1", -160.5),), powered_on=9_000
    )


def test_a_signed_message_verifies_under_its_key() -> None:
    """The signature made as the message leaves covers the rest of it."""
    assert verify(json.loads(signed(SPOOLED, b"k" * 32)), b"k" * 32)
