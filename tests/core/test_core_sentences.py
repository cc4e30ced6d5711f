"""Serial protocol v1: framing, checksum and decoding against golden bytes."""

from __future__ import annotations

import functools
import operator
import re
from pathlib import Path

import pytest

from coldchain.errors import SentenceError
from coldchain.sentences import (
    AckSentence,
    CommandSentence,
    HeartbeatSentence,
    TemperatureSentence,
    checksum,
    parse_sentence,
)

GOLDEN = (Path(__file__).parents[1] / "data" / "sentences_v1.txt").read_bytes().splitlines(keepends=True)
EXPECTED = [
    TemperatureSentence("probe1", -162.31, "OK"),
    TemperatureSentence("probe2", 0.0, "OPEN"),
    HeartbeatSentence(3600, "1.0.0", 4980),
    CommandSentence("RATE", "1000"),
    AckSentence("RATE", "1000"),
]


def test_checksum_is_xor_of_body_bytes() -> None:
    """The checksum is the XOR of every byte between '$' and '*', two uppercase hex digits."""
    body = "CCTMP,probe1,-162.31,OK"
    assert checksum(body) == f"{functools.reduce(operator.xor, body.encode()):02X}" == "0E"


@pytest.mark.parametrize(("line", "sentence"), list(zip(GOLDEN, EXPECTED, strict=True)))
def test_golden_lines_decode(line: bytes, sentence: object) -> None:
    """Each golden line decodes to its sentence."""
    assert parse_sentence(line) == sentence


@pytest.mark.parametrize(("line", "sentence"), list(zip(GOLDEN, EXPECTED, strict=True)))
def test_sentences_encode_to_golden_bytes(line: bytes, sentence: TemperatureSentence) -> None:
    """Encoding gives the golden bytes, CRLF included."""
    assert sentence.encode() == line


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"$CCTMP,probe1,-162.31,OK*0F\r\n", "checksum mismatch"),
        (b"CCTMP,probe1,-162.31,OK*0E\r\n", "does not start with '$'"),
        (b"$CCTMP,probe1,-162.31,OK\r\n", "no '*HH' checksum"),
        (b"$CCTMP,probe1,-162.31,HOT*" + checksum("CCTMP,probe1,-162.31,HOT").encode() + b"\r\n", "status 'HOT'"),
        (b"$CCTMP,probe1,warm,OK*" + checksum("CCTMP,probe1,warm,OK").encode(), "not a number"),
        (b"$CCTMP,probe1,nan,OK*" + checksum("CCTMP,probe1,nan,OK").encode(), "not finite"),
        (b"$CCTMP,pro/be,1.0,OK*" + checksum("CCTMP,pro/be,1.0,OK").encode(), "sensor name"),
        (b"$CCXYZ,1*" + checksum("CCXYZ,1").encode(), "unknown sentence type"),
        (b"$CCHBT,abc,1.0,5000*" + checksum("CCHBT,abc,1.0,5000").encode(), "uptime 'abc'"),
        (b"\xff\xfe$CCTMP", "non-ASCII"),
        (b"$" + b"A" * 200, "longer than"),
    ],
)
def test_bad_lines_raise_naming_the_problem(line: bytes, message: str) -> None:
    """A bad line raises SentenceError that says what is wrong."""
    with pytest.raises(SentenceError, match=re.escape(message)):
        parse_sentence(line)
