"""The evidence archive on disk: an append-only, hash-chained JSON-lines file.

The chain itself (line format, hashing, verification) is ``coldchain.record.evidence``;
this module only appends and syncs. A batch is synced before the gateway
acknowledges the messages in it, like the InfluxDB write.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from coldchain.record.evidence import archive_line, last_hash

__all__ = ["EvidenceArchive"]

_TAIL_BYTES = 1 << 20  # an archive line is at most a payload (16 kB) plus ~200 bytes


class EvidenceArchive:
    """Appends accepted raw messages to ``path``, continuing the chain already there."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self._prev = last_hash(self._last_line())

    def _last_line(self) -> bytes | None:
        size = os.fstat(self._fd).st_size
        if size == 0:
            return None
        start = max(0, size - _TAIL_BYTES)
        tail = os.pread(self._fd, size - start, start)
        if not tail.endswith(b"\n"):
            # a crash mid-append left half a line: cut it so the chain continues from the last whole one
            os.ftruncate(self._fd, start + tail.rfind(b"\n") + 1)
            tail = tail[: tail.rfind(b"\n") + 1]
        lines = tail.splitlines()
        return lines[-1] if lines else None

    def append(self, messages: Iterable[tuple[str, str, int]]) -> None:
        """Append (topic, payload text, received_ms) records and sync them to disk."""
        chunks = []
        prev = self._prev
        for topic, payload, received_ms in messages:
            line, prev = archive_line(prev, topic, payload, received_ms)
            chunks.append(line)
        if not chunks:
            return
        os.write(self._fd, b"".join(chunks))
        os.fsync(self._fd)
        self._prev = prev

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)
