"""Is a telemetry message really from its crate? Per-crate HMAC signatures (``coldchain.signing``).

Keys are the files ``<keys_dir>/<crate>.key`` (hex) that ``coldchain provision crate``
writes. A key is read once and kept; a crate without a key file is looked up
again at most every ``_RECHECK_S``, so a crate provisioned while the gateway
runs is recognised without a restart. Replays are the sequence tracker's
business: a replayed seq is a duplicate, and a replay with a changed payload no
longer matches its signature.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Final

from coldchain.errors import WireFormatError
from coldchain.signing import SIGNATURE_FIELD, verify
from coldchain.wire import json_object
from gateway.config import SecurityConfig

__all__ = ["Authenticity"]

log = logging.getLogger(__name__)

_RECHECK_S: Final = 10.0


class Authenticity:
    """Checks each telemetry message's signature against its crate's key."""

    def __init__(self, config: SecurityConfig) -> None:
        if config.keys_dir is None:
            raise ValueError("signature checks need a keys_dir")
        self.keys_dir: Path = config.keys_dir
        self.required = config.require_signatures
        self._keys: dict[str, bytes | None] = {}
        self._missing_until: dict[str, float] = {}

    def key_for(self, crate: str) -> bytes | None:
        """The crate's signing key, or None when it has none (yet)."""
        key = self._keys.get(crate)
        if key is not None:
            return key
        now = time.monotonic()
        if self._missing_until.get(crate, 0.0) > now:
            return None
        path = self.keys_dir / f"{crate}.key"
        try:
            key = bytes.fromhex(path.read_text().strip())
        except FileNotFoundError:
            key = None
        except (OSError, ValueError) as exc:
            log.error("signing key %s is unusable (%s): crate %s counts as unknown", path, exc, crate)
            key = None
        if key is None:
            self._missing_until[crate] = now + _RECHECK_S
        else:
            self._keys[crate] = key
        return key

    def check(self, crate: str, payload: bytes) -> None:
        """Raise WireFormatError ``unknown_crate`` or ``signature`` unless the (valid JSON) payload may be stored.

        A present signature must always verify; a missing one, or a crate without
        a key, is refused only when signatures are required.
        """
        key = self.key_for(crate)
        if key is None:
            if self.required:
                raise WireFormatError("unknown_crate", f"crate {crate!r} has no signing key in {self.keys_dir}")
            return
        # the size is the decoder's to judge: a refused oversized reading's signature still vouches for its seq
        body = json_object(payload, max_bytes=len(payload))
        if SIGNATURE_FIELD not in body:
            if self.required:
                raise WireFormatError("signature", f"message of crate {crate!r} is not signed")
            return
        if not verify(body, key):
            raise WireFormatError("signature", f"signature does not match the message and crate {crate!r}'s key")

    def vouches(self, crate: str, payload: bytes) -> bool:
        """True when a (rejected) payload may still move the crate's sequence accounting."""
        try:
            self.check(crate, payload)
        except (WireFormatError, ValueError, RecursionError):
            return False
        return True
