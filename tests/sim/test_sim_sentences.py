"""Protocol v1 extensions of the simulated board: clock (CCTIM), lid (CCLID), tilt (CCTLT), against golden bytes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from coldchain.errors import SentenceError
from coldchain.sentences import ClockSentence, LidSentence, TiltSentence, checksum, parse_sentence

GOLDEN = (Path(__file__).parents[1] / "data" / "sentences_sim_v1.txt").read_bytes().splitlines(keepends=True)
EXPECTED = [ClockSentence(1764086400123), LidSentence("OPEN"), LidSentence("CLOSED"), TiltSentence(88.5, 3.5)]


@pytest.mark.parametrize(("line", "sentence"), list(zip(GOLDEN, EXPECTED, strict=True)))
def test_golden_extension_lines_decode(line: bytes, sentence: object) -> None:
    """Each golden CCTIM/CCLID line decodes to its sentence."""
    assert parse_sentence(line) == sentence


@pytest.mark.parametrize(("line", "sentence"), list(zip(GOLDEN, EXPECTED, strict=True)))
def test_extension_sentences_encode_to_golden_bytes(
    line: bytes, sentence: ClockSentence | LidSentence | TiltSentence
) -> None:
    """Encoding CCTIM/CCLID gives the golden bytes, CRLF included."""
    assert sentence.encode() == line


def _line(body: str) -> bytes:
    return f"${body}*{checksum(body)}\r\n".encode()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (_line("CCTIM,soon"), "clock epoch ms 'soon'"),
        (_line("CCTIM,1,2"), "CCTIM needs 1 field"),
        (_line("CCTIM,-5"), "not a plausible epoch"),
        (_line("CCLID,AJAR"), "OPEN or CLOSED"),
        (_line("CCLID"), "OPEN or CLOSED"),
    ],
)
def test_bad_extension_lines_name_the_problem(line: bytes, message: str) -> None:
    """A malformed CCTIM or CCLID raises SentenceError that says what is wrong."""
    with pytest.raises(SentenceError, match=re.escape(message)):
        parse_sentence(line)
