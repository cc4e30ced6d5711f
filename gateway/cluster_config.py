"""``[cluster]`` of gateway.toml: the NATS cluster a gateway reads, its partitions and leases (docs/cluster.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from coldchain.settings.broker import parse_brokers
from coldchain.settings.table import Table

__all__ = ["ClusterConfig", "ClusterLogin", "parse_cluster"]

_NATS_SCHEMES: Final = ("nats://", "tls://")
MAX_PARTITIONS: Final = 1024


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Where the cluster is and how this gateway shares its partitions with the others."""

    nats: tuple[str, ...]  # NATS URLs of the nodes (the stream, the consumers, the key-value buckets)
    brokers: tuple[tuple[str, int], ...]  # their MQTT listeners: what crates and staff receive goes there
    partitions: int = 32  # as rendered by 'coldchain cluster-auth --partitions' into every node
    # a dead gateway's partitions are served again within lease_ttl + lease_ttl / 3 (its leases expire, the
    # others look every lease_ttl / 3), what it read unacknowledged by then (ack_wait <= 2/3 lease_ttl)
    lease_ttl_s: float = 6.0
    ack_wait_s: float = 4.0  # JetStream redelivers what was fetched and not acknowledged after this
    replicas: int = 3  # of the stream, the consumers and the key-value buckets
    batch: int = 500  # messages per fetch and partition at most

    @property
    def renew_s(self) -> float:
        """How often leases are renewed and free partitions looked for."""
        return self.lease_ttl_s / 3


@dataclass(frozen=True, slots=True)
class ClusterLogin:
    """The gateway's login on the cluster, for NATS and MQTT alike."""

    gateway: str  # its id: the leases' value, the NATS connection's name
    username: str | None = None
    password: str | None = None
    password_file: Path | None = None  # where password came from (the MQTT publisher reads it there)
    ca_file: Path | None = None


def _nats(table: Table) -> tuple[str, ...]:
    urls = table.text_list("nats")
    if not urls:
        raise table.error("nats", "must name at least one node (e.g. 'tls://nats-1.example.org:4222')")
    for url in urls:
        if not url.startswith(_NATS_SCHEMES) or not url.partition("://")[2]:
            raise table.error("nats", f"{url!r} is not a NATS URL (nats://host:port or tls://host:port)")
    if len(set(urls)) != len(urls):
        raise table.error("nats", f"a node is listed twice: {urls}")
    return tuple(urls)


def parse_cluster(table: Table) -> ClusterConfig:
    """The ``[cluster]`` table; ConfigError naming file, key and problem (unknown keys refused by the caller)."""
    brokers = parse_brokers(table)
    if not brokers:
        raise table.error("brokers", 'is required: the nodes\' MQTT listeners, e.g. ["nats-1.example.org:8883"]')
    defaults = ClusterConfig((), ())
    ttl = table.duration("lease_ttl", defaults.lease_ttl_s, minimum=1.0, maximum=300.0)
    # what a dead gateway read and did not acknowledge must come again before its lease can be taken (it can have
    # read up to its death, renewed up to lease_ttl / 3 before): else the next owner reads later messages first
    ack_wait = table.duration("ack_wait", min(defaults.ack_wait_s, ttl * 2 / 3), minimum=0.5)
    if ack_wait > ttl * 2 / 3:
        raise table.error("ack_wait", f"{ack_wait:g} s is more than 2/3 of lease_ttl ({ttl:g} s): a crate's messages "
                          "could reach the next gateway out of order")  # fmt: skip
    return ClusterConfig(
        nats=_nats(table),
        brokers=brokers,
        partitions=table.integer("partitions", defaults.partitions, minimum=1, maximum=MAX_PARTITIONS),
        lease_ttl_s=ttl,
        ack_wait_s=ack_wait,
        replicas=table.integer("replicas", defaults.replicas, minimum=1, maximum=5),
        batch=table.integer("batch", defaults.batch, minimum=1, maximum=10_000),
    )
