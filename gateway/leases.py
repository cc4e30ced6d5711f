"""Partition leases in a replicated key-value bucket: which gateway reads which partition of the stream.

A lease is the key ``p<k>`` of bucket ``coldchain_leases`` (replicas 3, the lease
TTL as the bucket's ``max_age``: nats-server 2.9 has no per-key TTL), valued with
the holder's id. It is taken with ``create`` (refused while another holds it),
kept with ``update(last=revision)`` every TTL/3, and lost the moment an update
is refused or cannot be made: the holder then stops reading the partition at
once and acknowledges nothing more of it. A dead gateway's leases expire with
the TTL. Each gateway writes its heartbeat into ``coldchain_gateways`` (same
TTL) every round; the living count gives the fair share, ``ceil(N / living)``.
Runs on the link's event loop (``gateway.jetstream_link``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from typing import Final

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BadRequestError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

__all__ = ["GATEWAYS", "LEASES", "Leases", "open_bucket"]

log = logging.getLogger(__name__)

LEASES: Final = "coldchain_leases"
GATEWAYS: Final = "coldchain_gateways"


async def open_bucket(js: JetStreamContext, bucket: str, replicas: int, ttl_s: float | None = None) -> KeyValue:
    """The bucket, made with this configuration when it does not exist yet."""
    config = KeyValueConfig(bucket=bucket, history=1, replicas=replicas, ttl=ttl_s, storage=StorageType.FILE)
    try:
        return await js.create_key_value(config)
    except BadRequestError:  # it exists (made by another gateway, perhaps with another TTL: the first one's counts)
        return await js.key_value(bucket)


def _key(partition: int) -> str:
    return f"p{partition}"


class Leases:
    """The partitions this gateway holds, with the revision that proves it."""

    def __init__(self, gateway: str, partitions: int, ttl_s: float, replicas: int) -> None:
        """``gateway``: this gateway's id (the leases' value, unique in the fleet)."""
        self.gateway = gateway
        self.partitions = partitions
        self.ttl_s = ttl_s
        self.replicas = replicas
        self.held: dict[int, int] = {}  # partition -> revision of our lease
        self._leases: KeyValue | None = None
        self._gateways: KeyValue | None = None
        self._living = 1  # gateways with a heartbeat, as last counted

    async def open(self, js: JetStreamContext) -> None:
        """Open (or make) the two buckets."""
        self._leases = await open_bucket(js, LEASES, self.replicas, self.ttl_s)
        self._gateways = await open_bucket(js, GATEWAYS, self.replicas, self.ttl_s)

    def _buckets(self) -> tuple[KeyValue, KeyValue]:
        if self._leases is None or self._gateways is None:
            raise RuntimeError("Leases.open() first")
        return self._leases, self._gateways

    async def renew(self) -> list[int]:
        """Renew every lease held; the partitions whose lease is lost (refused, or not renewable now)."""
        leases, _ = self._buckets()
        lost = []
        for partition, revision in list(self.held.items()):
            try:
                renewed = await leases.update(_key(partition), self.gateway.encode(), last=revision)
            except (NatsError, TimeoutError) as exc:
                # refused (another holds it) or unknown (no answer): either way we may no longer read it
                log.warning("lost the lease of partition %d (%s)", partition, exc or type(exc).__name__)
                renewed = 0
            if self.held.get(partition) != revision:
                continue  # given up or forfeited meanwhile (renewals run beside the rounds that take and give)
            if renewed:
                self.held[partition] = renewed
            else:
                del self.held[partition]
                lost.append(partition)
        return lost

    async def share(self) -> int:
        """Say we live; how many partitions are ours to hold: ceil(N / living gateways)."""
        _, gateways = self._buckets()
        await gateways.put(self.gateway, b"")
        try:
            # the listing waits for every heartbeat it was told of: one expiring meanwhile never comes (seen:
            # a round stuck for good while a paused gateway's heartbeat expired), so it is given a third of a TTL
            self._living = len(await asyncio.wait_for(gateways.keys(), self.ttl_s / 3))
        except NoKeysError:
            self._living = 1
        except TimeoutError:
            log.info("the living gateways were not listed in time; counting %d as before", self._living)
        return math.ceil(self.partitions / max(1, self._living))

    async def acquire(self, wanted: int) -> list[int]:
        """Take up to ``wanted`` free partitions; those taken."""
        leases, _ = self._buckets()
        free = [p for p in range(self.partitions) if p not in self.held]
        random.shuffle(free)  # gateways starting together try different partitions first
        taken: list[int] = []
        for partition in free:
            if len(taken) >= wanted:
                break
            try:
                self.held[partition] = await leases.create(_key(partition), self.gateway.encode())
            except KeyWrongLastSequenceError:
                continue  # held by another gateway
            except (NatsError, TimeoutError) as exc:
                log.warning("cannot take the lease of partition %d now (%s)", partition, exc or type(exc).__name__)
                break
            taken.append(partition)
        return taken

    def forfeit(self, partition: int) -> None:
        """Another gateway holds ``partition`` (it wrote one of its crates): forget our lease, never give it up."""
        self.held.pop(partition, None)

    async def release(self, partition: int) -> None:
        """Give a lease up (its partition drained): another gateway may take it at once."""
        leases, _ = self._buckets()
        revision = self.held.pop(partition, None)
        if revision is None:
            return
        try:
            await leases.delete(_key(partition), last=revision)
        except (NatsError, TimeoutError) as exc:  # it expires with the TTL instead
            log.warning("cannot give up the lease of partition %d (%s); it expires", partition, exc)

    async def leave(self) -> None:
        """Give up every lease and the heartbeat (a clean stop): the others take over without waiting."""
        _, gateways = self._buckets()
        for partition in list(self.held):
            await self.release(partition)
        try:
            await gateways.delete(self.gateway)
        except (NatsError, TimeoutError) as exc:
            log.warning("cannot remove the heartbeat (%s); it expires", exc)
