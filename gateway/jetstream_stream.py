"""The replicated JetStream stream that captures what crates and staff publish over MQTT, in partitions.

nats-server turns an MQTT topic into a NATS subject (``/`` -> ``.``; 2.9 refuses
topics with ``.``). The account's subject mappings (``mappings``, rendered into
every node's auth.conf by ``coldchain cluster-auth``) move a crate's telemetry and
events and the staff acks of its alarms to ``cc.p.<k>.<subject>``, ``k`` a hash
of the crate id modulo the partition count: every message of one crate lands in
one partition, in arrival order, replicated on three nodes. Each partition has a
durable pull consumer, read by whichever gateway holds its lease. Crate status
is not mapped: a mapping moves an MQTT retained message to the mapped topic
(verified on 2.9.10), and the status is retained for staff and the board; the
stream captures it under its own subject. The gateway acknowledges a message
only after InfluxDB stored it.
"""

from __future__ import annotations

import itertools
import ssl
from pathlib import Path
from typing import Any, Final

import nats
from nats.aio.client import Client as Nats
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig, StreamInfo
from nats.js.errors import BadRequestError

__all__ = [
    "PARTITIONED",
    "PREFIX",
    "STATUS_SUBJECT",
    "STREAM",
    "connect",
    "crate_of",
    "durable_of",
    "ensure_stream",
    "mappings",
    "partition_of",
    "partition_subject",
    "subject_of",
    "topic_of",
]

STREAM: Final = "COLDCHAIN"
PREFIX: Final = "cc.p"
# what crates and staff publish that is partitioned by crate: the crate id is the first wildcard of each
PARTITIONED: Final = (
    "coldchain.v1.crates.*.telemetry",
    "coldchain.v1.crates.*.events",
    "coldchain.v1.acks.*.*.*",
)
STATUS_SUBJECT: Final = "coldchain.v1.crates.*.status"
# a crate crosses the world in at most 14 days; a gateway fleet down longer than that loses readings
# only if the crates lost them too (they keep what no storage ack confirmed)
MAX_AGE_S: Final = 14 * 86400


def mappings(partitions: int) -> str:
    """The nodes' ``mappings`` block: each subject of ``PARTITIONED`` to ``cc.p.<partition of its crate>.<subject>``."""
    lines = []
    for source in PARTITIONED:
        wildcards = itertools.count(1)
        levels = [f"{{{{wildcard({next(wildcards)})}}}}" if level == "*" else level for level in source.split(".")]
        target = f"{PREFIX}.{{{{partition({partitions},1)}}}}." + ".".join(levels)
        lines.append(f'  "{source}": "{target}"')
    return "mappings = {\n" + "\n".join(lines) + "\n}\n"


def partition_of(crate: str, partitions: int) -> int:
    """The partition nats-server maps ``crate``'s messages to: FNV-1a (32 bit) of its id, modulo ``partitions``."""
    digest = 2166136261
    for byte in crate.encode():
        digest = ((digest ^ byte) * 16777619) & 0xFFFFFFFF
    return digest % partitions


def partition_subject(partition: int) -> str:
    """The filter of ``partition``'s consumer."""
    return f"{PREFIX}.{partition}.>"


def durable_of(partition: int) -> str:
    """The durable consumer of ``partition``, shared by every gateway (the lease says who reads it)."""
    return f"gw-p{partition:02d}"


def crate_of(topic: str) -> str:
    """The crate a message of the stream is about: coldchain/v1/{crates,acks}/<crate>/... ("" if none)."""
    parts = topic.split("/", 4)
    return parts[3] if len(parts) > 3 else ""


def topic_of(subject: str) -> str:
    """The MQTT topic a message of the stream was published on (ids hold no ``.`` on this path)."""
    if subject.startswith(PREFIX + "."):
        subject = subject.split(".", 3)[3]
    return subject.replace(".", "/")


def subject_of(topic: str) -> str:
    """The subject nats-server gives an MQTT topic without ``.`` (``/`` -> ``.``)."""
    return topic.replace("/", ".")


async def connect(
    servers: list[str],
    user: str | None = None,
    password: str | None = None,
    ca_file: Path | None = None,
    **options: Any,
) -> Nats:
    """A NATS connection to any of ``servers`` that reconnects to the others for ever."""
    tls = None
    if ca_file is not None:
        tls = ssl.create_default_context(cafile=str(ca_file))
    return await nats.connect(
        servers=servers,
        user=user,
        password=password,
        tls=tls,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=2,
        allow_reconnect=True,
        **options,
    )


async def ensure_stream(js: JetStreamContext, replicas: int = 3) -> StreamInfo:
    """Create the stream, or bring an existing one to this configuration (subjects, replicas, age)."""
    config = StreamConfig(
        name=STREAM,
        subjects=[f"{PREFIX}.>", STATUS_SUBJECT],
        storage=StorageType.FILE,
        num_replicas=replicas,
        max_age=MAX_AGE_S,
    )
    try:
        return await js.add_stream(config)
    except BadRequestError:
        # it exists with another configuration (an older version of this one): update it in place
        return await js.update_stream(config)
