"""The replicated JetStream stream that captures what crates and staff publish over MQTT.

nats-server turns an MQTT topic into a NATS subject (``/`` -> ``.``; 2.9 refuses
topics with ``.``), so a stream on the subjects below holds every telemetry,
status and event message of every crate and every staff acknowledgement, in
arrival order, replicated on three nodes. The gateway reads it with a durable
pull consumer and acknowledges a message only after InfluxDB stored it.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Final

import nats
from nats.aio.client import Client as Nats
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig, StreamInfo
from nats.js.errors import BadRequestError

__all__ = ["STREAM", "SUBJECTS", "connect", "ensure_stream", "subject_of", "topic_of"]

STREAM: Final = "COLDCHAIN"
SUBJECTS: Final = (
    "coldchain.v1.crates.*.telemetry",
    "coldchain.v1.crates.*.status",
    "coldchain.v1.crates.*.events",
    "coldchain.v1.acks.*.*.*",
)
# a crate crosses the world in at most 14 days; a gateway fleet down longer than that loses readings
# only if the crates lost them too (they keep what no storage ack confirmed)
MAX_AGE_S: Final = 14 * 86400


def topic_of(subject: str) -> str:
    """The MQTT topic a subject of ``SUBJECTS`` came from (ids hold no ``.`` on this path)."""
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
        subjects=list(SUBJECTS),
        storage=StorageType.FILE,
        num_replicas=replicas,
        max_age=MAX_AGE_S,
    )
    try:
        return await js.add_stream(config)
    except BadRequestError:
        # it exists with another configuration (an older version of this one): update it in place
        return await js.update_stream(config)
