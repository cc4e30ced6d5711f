"""Per-crate state in a replicated key-value bucket, fenced by revision: what a partition's next owner resumes from.

Key ``cr.<partition>.<crate>`` of bucket ``coldchain_crates`` (replicas 3), value
the crate's snapshot as the state file holds it (sequence and gaps, alarm rules'
state) plus its part of the alarm book. The worker saves a batch's snapshots
after the InfluxDB write and before acknowledging the batch to JetStream. Each
write is ``update(last=revision)`` with the revision this gateway loaded or last
wrote: when another gateway wrote the crate since (it took the partition over),
the write is refused, and the partition is dropped without acknowledging
anything (``on_fenced``). A new owner loads every crate of a partition before it
reads the partition's first message. The sync methods run on the worker's
writer thread and hand the work to the link's event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any, Final

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from gateway.jetstream_stream import partition_of
from gateway.leases import open_bucket

__all__ = ["CRATES", "CrateKv"]

log = logging.getLogger(__name__)

CRATES: Final = "coldchain_crates"
_CALL_S: Final = 10.0  # one save or forget of a batch, the cluster answering within its request timeouts


class CrateKv:
    """The crates' state in the bucket; ``save``/``forget`` are ``gateway.worker.CrateStore``."""

    def __init__(self, partitions: int, replicas: int, on_fenced: Callable[[int], None]) -> None:
        """``on_fenced(partition)``: another gateway wrote a crate of ``partition`` (called on the event loop)."""
        self.partitions = partitions
        self.replicas = replicas
        self._on_fenced = on_fenced
        self._revisions: dict[str, int] = {}  # crate -> revision we loaded or wrote (0: none, or deleted: create)
        self._bucket: KeyValue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def key(self, crate: str) -> str:
        """The crate's key (its partition first, so one partition's crates are read with one filter)."""
        return f"cr.{partition_of(crate, self.partitions)}.{crate}"

    async def open(self, js: JetStreamContext) -> None:
        """Open (or make) the bucket; from now on the sync methods use the running loop."""
        self._bucket = await open_bucket(js, CRATES, self.replicas)
        self._loop = asyncio.get_running_loop()

    def _kv(self) -> KeyValue:
        if self._bucket is None:
            raise RuntimeError("CrateKv.open() first")
        return self._bucket

    async def load(self, partition: int) -> dict[str, dict[str, Any]]:
        """Every crate of ``partition`` as its last owner saved it; their revisions are ours to write on."""
        watcher = await self._kv().watch(f"cr.{partition}.>")
        found: dict[str, dict[str, Any]] = {}
        try:
            while (entry := await watcher.updates(timeout=_CALL_S)) is not None:  # type: ignore[no-untyped-call]
                crate = entry.key.split(".", 2)[2]
                if entry.operation is not None:  # deleted (forgotten for its silence): created again if heard
                    self._revisions[crate] = 0
                    continue
                self._revisions[crate] = entry.revision
                try:
                    snapshot = json.loads(entry.value or b"")
                except ValueError:
                    log.error("crate %s: its saved state is not JSON; it starts afresh", crate)
                    continue
                if isinstance(snapshot, dict):
                    found[crate] = snapshot
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
        return found

    def drop(self, partition: int) -> None:
        """Forget the revisions of ``partition``'s crates (we no longer own them: they may change under us)."""
        for crate in [c for c in self._revisions if partition_of(c, self.partitions) == partition]:
            del self._revisions[crate]

    def _call(self, work: Any) -> None:
        loop = self._loop
        if loop is None or not loop.is_running():
            raise ConnectionError("the cluster link is not running")
        try:
            asyncio.run_coroutine_threadsafe(work, loop).result(timeout=_CALL_S)
        except (NatsError, TimeoutError) as exc:
            raise ConnectionError(f"the cluster did not take the crates' state: {exc or type(exc).__name__}") from exc

    def save(self, snapshots: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Write the batch's snapshots; a crate another gateway wrote since is not written (its partition fenced)."""
        rows = [(crate, json.dumps(snapshot, separators=(",", ":")).encode()) for crate, snapshot in snapshots]
        if rows:
            self._call(self._save(rows))

    async def _save(self, rows: list[tuple[str, bytes]]) -> None:
        # the batch's writes go out together and are awaited together: one round trip of the replicated
        # bucket per batch, not per crate (each write is still fenced on its own revision)
        ours = [(crate, value) for crate, value in rows if crate in self._revisions]  # others: no longer our partition
        # every write settled before a failure is reported: a retry of the batch then sees their revisions
        results = await asyncio.gather(*(self._write(crate, value) for crate, value in ours), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _write(self, crate: str, value: bytes) -> None:
        kv = self._kv()
        revision, key = self._revisions[crate], self.key(crate)
        try:
            # create: over a deleted key's marker too (a crate forgotten, then heard again)
            written = await (kv.update(key, value, last=revision) if revision else kv.create(key, value))
        except KeyWrongLastSequenceError:
            partition = partition_of(crate, self.partitions)
            log.error("crate %s was written by another gateway: dropping partition %d unacknowledged", crate,
                      partition)  # fmt: skip
            self._on_fenced(partition)
            return
        if crate in self._revisions:  # its partition may have been dropped (fenced) while the write was out
            self._revisions[crate] = written

    def adopt(self, crate: str) -> None:
        """A crate of one of our partitions with no saved state: it is written with ``create``."""
        self._revisions.setdefault(crate, 0)

    def forget(self, crates: Iterable[str]) -> None:
        """Delete the state of crates forgotten for their silence, in the background.

        Called with the worker's lock held, which the link's loop may be waiting for: never waited on here.
        """
        loop = self._loop
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(self._forget(list(crates)), loop)

    async def _forget(self, crates: list[str]) -> None:
        kv = self._kv()
        for crate in crates:
            revision = self._revisions.get(crate)
            if not revision:
                continue  # never saved, or not ours
            try:
                await kv.delete(self.key(crate), last=revision)
            except (NatsError, TimeoutError) as exc:  # written by another gateway since, or no answer
                log.warning("crate %s not forgotten in the cluster (%s)", crate, exc)
                continue
            if crate in self._revisions:
                self._revisions[crate] = 0  # still in our partition: should it speak again, it is created afresh
