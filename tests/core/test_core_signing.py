"""Per-crate message signatures over the canonical payload."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.signing import canonical, sign, verify

KEY = bytes.fromhex("00" * 31 + "01")
BODY = {
    "v": 1,
    "crate": "C-0042",
    "seq": 17,
    "ts": 1764086400123,
    "readings": [{"sensor": "probe1", "value_c": -162.31}],
}


def test_canonical_form_is_sorted_compact_and_excludes_the_signature() -> None:
    """Key order, whitespace and the sig field never change what is signed."""
    reordered = dict(reversed(list(BODY.items())), sig="whatever")
    assert (
        canonical(reordered)
        == canonical(BODY)
        == (b'{"crate":"C-0042","readings":[{"sensor":"probe1","value_c":-162.31}],"seq":17,"ts":1764086400123,"v":1}')
    )


def test_signature_is_hmac_sha256_of_the_canonical_form() -> None:
    """The signature is plain HMAC-SHA256, so any language can check it."""
    assert sign(BODY, KEY) == hmac.new(KEY, canonical(BODY), hashlib.sha256).hexdigest()


def test_verify_accepts_the_signed_body_and_refuses_any_change() -> None:
    """A signed body verifies; a changed value, a wrong key or a missing signature does not."""
    signed = {**BODY, "sig": sign(BODY, KEY)}
    assert verify(signed, KEY)
    assert not verify({**signed, "seq": 18}, KEY)
    assert not verify(signed, b"another key")
    assert not verify(BODY, KEY)


@settings(max_examples=200, deadline=None)
@given(
    sig=st.none() | st.integers() | st.text(max_size=80) | st.sampled_from(["\u00e9" * 64, "\ud800", "ab" * 32]),
    extra=st.none() | st.floats() | st.text(max_size=10) | st.just("\ud800"),
)
def test_verify_is_total(sig: object, extra: object) -> None:
    """Any signature value and any extra field (NaN, a lone surrogate) give True or False, never an exception."""
    body = {"v": 1, "crate": "C-1", "seq": 1, "extra": extra, "sig": sig}
    assert verify(body, b"k" * 32) in (True, False)
    assert not verify({"v": 1, "sig": "\u00e9" * 64}, b"k" * 32)
