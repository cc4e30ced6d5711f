"""Message authenticity: a per-crate HMAC-SHA256 over the canonical payload.

The signature travels in the optional ``sig`` field of a telemetry payload. The
canonical form is the payload without ``sig``, as JSON with sorted keys, no
whitespace and UTF-8 text, so signer and verifier agree byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

__all__ = ["SIGNATURE_FIELD", "canonical", "sign", "verify"]

SIGNATURE_FIELD = "sig"


def canonical(body: dict[str, Any]) -> bytes:
    """The bytes a signature covers: ``body`` without its signature, canonically serialised."""
    unsigned = {k: v for k, v in body.items() if k != SIGNATURE_FIELD}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sign(body: dict[str, Any], key: bytes) -> str:
    """Hex HMAC-SHA256 of the canonical form of ``body`` under the crate's ``key``."""
    return hmac.new(key, canonical(body), hashlib.sha256).hexdigest()


def verify(body: dict[str, Any], key: bytes) -> bool:
    """True when ``body`` carries a signature that matches its content under ``key``."""
    given = body.get(SIGNATURE_FIELD)
    if not isinstance(given, str) or not given.isascii():
        return False  # a hex digest is ASCII, and compare_digest refuses other text with TypeError
    try:
        expected = sign(body, key)
    except (ValueError, RecursionError):
        return False  # NaN, a lone surrogate, or nesting beyond what JSON can write: nothing signed this
    return hmac.compare_digest(given, expected)
