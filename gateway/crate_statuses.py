"""Crate statuses for the gateway on the cluster: not partitioned, so each gateway reads them all and keeps its own.

A subject mapping would move the status's retained message to the mapped topic
(docs/cluster.md), so the stream captures statuses under their own subject. Each
gateway reads those published from its start through an ephemeral consumer (no
acknowledgements) and hands on the statuses of crates in the partitions it holds.
The consumer is made again when a fetch fails: the cluster deletes an idle
ephemeral consumer (a gateway paused for seconds) and loses one on a node that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from gateway.jetstream_stream import STATUS_SUBJECT, STREAM, crate_of, topic_of
from gateway.mqtt_link import Deliveries

__all__ = ["read_statuses"]

log = logging.getLogger(__name__)

_FETCH_WAIT_S = 0.5
_RETRY_S = 1.0


async def read_statuses(
    js: JetStreamContext, keep: Callable[[str], bool], deliver: Callable[[Deliveries], None]
) -> None:
    """For ever: each fetch's statuses whose crate ``keep`` accepts go to ``deliver`` (id 0: nothing to ack)."""
    config = ConsumerConfig(deliver_policy=DeliverPolicy.NEW, ack_policy=AckPolicy.NONE)
    while True:
        try:
            subscription = await js.pull_subscribe(STATUS_SUBJECT, stream=STREAM, config=config)
        except (NatsError, TimeoutError) as exc:
            log.warning("cannot read crate statuses yet (%s); retrying", exc)
            await asyncio.sleep(_RETRY_S)
            continue
        await _read(subscription, keep, deliver)
        with contextlib.suppress(NatsError, TimeoutError):
            await subscription.unsubscribe()
        await asyncio.sleep(_RETRY_S)


async def _read(
    subscription: JetStreamContext.PullSubscription, keep: Callable[[str], bool], deliver: Callable[[Deliveries], None]
) -> None:
    """Until a fetch fails."""
    while True:
        try:
            messages = await subscription.fetch(100, timeout=_FETCH_WAIT_S)
        except (NatsTimeout, TimeoutError):
            continue
        except NatsError as exc:
            log.warning("fetch of crate statuses failed (%s); reading them afresh", exc)
            return
        deliveries: Deliveries = []
        for message in messages:
            topic = topic_of(message.subject)
            if keep(crate_of(topic)):
                deliveries.append((topic, message.data, 0, 0))
        log.debug("fetched %d crate statuses, %d of our partitions", len(messages), len(deliveries))
        if deliveries:
            deliver(deliveries)
