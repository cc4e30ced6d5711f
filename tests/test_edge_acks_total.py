"""The agent survives any storage ack: an absurd stored_through prunes nothing, and the next good one still does."""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from edge_helpers import RunAgent, agent_config, send_ack, wait_until

from cli.services import Mosquitto
from coldchain.topics import storage_ack_topic

pytestmark = pytest.mark.integration

TS = 1_795_000_000_000


def _publish(broker: Mosquitto, topic: str, payloads: list[bytes]) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    for payload in payloads:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def test_absurd_and_malformed_acks_prune_nothing_and_a_good_one_still_prunes(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, run_agent: RunAgent
) -> None:
    """stored_through beyond every seq, far below -1 or of the wrong type: counted, spool intact, agent alive."""
    crate = f"{crate_prefix}-A"
    run = run_agent(agent_config(tmp_path, crate, mosquitto))
    for i in range(3):
        run.sample(TS + i * 1000, probe1=-170.0 + i)
    wait_until(lambda: run.agent.forwarder.published == 3, 10, "3 PUBACKs")
    hostile = [
        b'{"v":1,"crate":"%s","stored_through":%d}' % (crate.encode(), value)
        for value in (2**63, 2**63 - 1, 10**30, -(2**70), -5)
    ]
    hostile += [
        b'{"v":1,"crate":"%s","stored_through":%s}' % (crate.encode(), value)
        for value in (b"1e400", b"NaN", b"[1]", b'{"a":1}', b"1" * 5000)
    ]
    hostile += [b"\xff\xfe", b"[" * 100_000, b"{}"]
    _publish(mosquitto, storage_ack_topic(crate), hostile)

    def refused() -> int:
        return run.agent.link.bad_acks + run.agent.forwarder.absurd_acks

    wait_until(lambda: refused() == len(hostile), 10, "every hostile ack refused")
    assert len(run.agent.spool) == 3
    assert run.thread.is_alive()
    send_ack(mosquitto, crate, 1)
    wait_until(lambda: len(run.agent.spool) == 1, 10, "a good ack prunes through seq 1")
    assert run.agent.spool.first_seq() == 2
