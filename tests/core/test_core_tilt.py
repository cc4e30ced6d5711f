"""Serial protocol v1 extension $CCTLT: the board's tilt and shock, encoded and decoded totally."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.errors import SentenceError
from coldchain.sentences import TiltSentence, checksum, frame, parse_sentence


def test_golden_tilt_line_decodes() -> None:
    """The documented example decodes to 88.5 degrees from vertical and a 3.5 g shock."""
    assert parse_sentence(b"$CCTLT,88.5,3.50*" + checksum("CCTLT,88.5,3.50").encode() + b"\r\n") == TiltSentence(
        88.5, 3.5
    )


def test_tilt_encodes_one_decimal_and_shock_two() -> None:
    """Encoding rounds the angle to 0.1 degree and the shock to 0.01 g, as the protocol says."""
    assert TiltSentence(1.26, 0.004).encode() == frame("CCTLT,1.3,0.00")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("CCTLT,181.0,0.00", "tilt '181.0' is not between 0 and 180"),
        ("CCTLT,-1.0,0.00", "tilt '-1.0' is not between"),
        ("CCTLT,nan,0.00", "not a decimal number"),
        ("CCTLT,1e1,0.00", "not a decimal number"),
        ("CCTLT,10.0,-0.5", "shock '-0.5' is not between"),
        ("CCTLT,10.0,500.00", "shock '500.00' is not between"),
        ("CCTLT,10.0", "CCTLT needs 2 fields, got 1"),
        ("CCTLT,10.0,0.00,1", "CCTLT needs 2 fields, got 3"),
    ],
)
def test_bad_tilt_lines_are_refused_naming_the_field(body: str, message: str) -> None:
    """An angle or shock out of range, not a plain decimal, or a wrong field count: a SentenceError saying so."""
    with pytest.raises(SentenceError, match=message):
        parse_sentence(frame(body))


@given(
    tilt=st.floats(min_value=0.0, max_value=180.0, allow_nan=False),
    shock=st.floats(min_value=0.0, max_value=400.0, allow_nan=False),
)
def test_any_tilt_the_board_can_send_round_trips(tilt: float, shock: float) -> None:
    """Every encodable tilt and shock decodes to the values the line carries."""
    decoded = parse_sentence(TiltSentence(tilt, shock).encode())
    assert decoded == TiltSentence(round(tilt, 1), round(shock, 2))


@given(fields=st.lists(st.text(alphabet="0123456789.-+eEnaif_ ,", max_size=12), max_size=4))
def test_tilt_decoding_is_total(fields: list[str]) -> None:
    """Any CCTLT body gives a TiltSentence within range or a SentenceError, never another exception."""
    try:
        sentence = parse_sentence(frame(",".join(["CCTLT", *fields])))
    except SentenceError:
        return
    assert isinstance(sentence, TiltSentence)
    assert 0.0 <= sentence.tilt_deg <= 180.0
    assert 0.0 <= sentence.shock_g <= 400.0
