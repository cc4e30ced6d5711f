"""A crate's own messages changed after they were encoded, while they wait in its spool or as they leave.

The agent encodes a message when it is taken and spools the bytes; a few facts arrive later: the
probe board's switch-on time, the wall clock once it is set, a new seq after a reset, the signature
made as the message leaves. These functions set them on the spooled bytes, so the agent never
handles a message's JSON itself. Their input is the agent's own encoding, never outside bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from coldchain.signing import SIGNATURE_FIELD, sign
from coldchain.wire.common import encode_body
from coldchain.wire.telemetry import TS_CORRECTED, TS_UNCERTAIN

__all__ = ["amended", "restamped", "signed", "with_powered_on"]


def _body(payload: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(payload)
    return body


def amended(payload: bytes, changes: Mapping[str, Any]) -> bytes:
    """The spooled message with the fields ``changes`` names set (e.g. its new ``seq``)."""
    body = _body(payload)
    body.update(changes)
    return encode_body(body)


def with_powered_on(payload: bytes, ts: int, powered_on: int) -> bytes | None:
    """The spooled telemetry of sample time ``ts`` with its probe board's switch-on time.

    None when the message is no longer dated ``ts`` (restamped or renumbered meanwhile): it is not
    the sample the caller means.
    """
    body = _body(payload)
    if body.get("ts") != ts:
        return None
    body["powered_on"] = powered_on
    return encode_body(body)


def restamped(payload: bytes, ts: int | None) -> tuple[bytes, int]:
    """A spooled telemetry or event message taken with the wall clock unset, dated anew; with its ``ts``.

    ``ts``: its time from the monotonic clock of the same boot: flagged ``ts_corrected``, and its
    ``powered_on`` (stamped by the same unset clock) moves with it. None: taken in an earlier boot,
    whose monotonic time says nothing of now: flagged ``ts_uncertain``, ``ts`` left as it was.
    """
    body = _body(payload)
    if ts is None:
        body[TS_UNCERTAIN] = True
    else:
        if "powered_on" in body:
            body["powered_on"] = min(ts, body["powered_on"] + ts - body["ts"])
        body["ts"] = ts
        body[TS_CORRECTED] = True
    return encode_body(body), int(body["ts"])


def signed(payload: bytes, key: bytes) -> bytes:
    """The message with the crate's signature (``sig``) over the rest of it."""
    body = _body(payload)
    body[SIGNATURE_FIELD] = sign(body, key)
    return encode_body(body)
