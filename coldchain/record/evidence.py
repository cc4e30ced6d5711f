"""The tamper-evident record: accepted raw messages in a hash chain.

InfluxDB overwrites a point with the same key, so it cannot be the record of
evidence on its own. The gateway also appends every accepted raw message to an
archive of JSON lines, each carrying the SHA-256 of the previous line's record:
changing, removing or reordering any line breaks the chain from there on.

Line format (one JSON object per line, keys sorted, no whitespace):
``{"hash": H, "payload": P, "prev": H0, "received_ms": T, "topic": S}`` where
``H = sha256(H0 + "\\n" + canonical({payload, prev, received_ms, topic}))``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from coldchain import signing

__all__ = ["GENESIS", "ChainBreak", "archive_line", "last_hash", "verify_chain"]

GENESIS = "0" * 64


def _digest(prev: str, record: dict[str, object]) -> str:
    body = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


def archive_line(prev: str, topic: str, payload: str, received_ms: int) -> tuple[bytes, str]:
    """The archive line for one accepted message after the line whose hash is ``prev``; and its hash."""
    record: dict[str, object] = {"payload": payload, "prev": prev, "received_ms": received_ms, "topic": topic}
    digest = _digest(prev, record)
    record["hash"] = digest
    line = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    return line.encode(), digest


def last_hash(last_line: bytes | None) -> str:
    """The hash to continue the chain from, given the archive's last line (None: empty archive)."""
    if not last_line:
        return GENESIS
    return str(json.loads(last_line)["hash"])


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where and why the archive stops being trustworthy (1-based line number)."""

    line: int
    reason: str


def verify_chain(
    lines: Iterable[bytes], key_for: Callable[[str], bytes | None] | None = None
) -> tuple[int, ChainBreak | None]:
    """Check every link (and, with ``key_for(crate)``, every signature); return lines read and the first break."""
    prev = GENESIS
    count = 0
    for count, raw in enumerate(lines, start=1):
        try:
            record = json.loads(raw)
            given = record.pop("hash")
        except (ValueError, KeyError, AttributeError, TypeError):
            return count, ChainBreak(count, "not an archive record")
        if record.get("prev") != prev:
            return count, ChainBreak(count, "does not follow the previous line (line removed, inserted or reordered)")
        if _digest(prev, record) != given:
            return count, ChainBreak(count, "content does not match its hash (line altered)")
        if key_for is not None:
            problem = _signature_problem(record, key_for)
            if problem:
                return count, ChainBreak(count, problem)
        prev = given
    return count, None


def _signature_problem(record: dict[str, object], key_for: Callable[[str], bytes | None]) -> str | None:
    try:
        body = json.loads(str(record["payload"]))
        crate = str(body["crate"])
    except (ValueError, KeyError, TypeError):
        return "payload is not a crate message"
    key = key_for(crate)
    if key is None:
        return f"no signing key for crate {crate!r}"
    if not signing.verify(body, key):
        return f"signature of crate {crate!r} does not verify"
    return None
