"""Store-and-forward against the real broker: spool first, prune on the gateway's ack, drain in order."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from edge_helpers import Listen, RunAgent, agent_config, send_ack, wait_until

from cli.services import Mosquitto

pytestmark = pytest.mark.integration

TS = 1_795_000_000_000


def test_rows_leave_the_spool_only_on_storage_ack(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, listen: Listen, run_agent: RunAgent
) -> None:
    """PUBACKed telemetry stays spooled until the gateway's stored_through covers it."""
    crate = f"{crate_prefix}-P"
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/telemetry"])
    run = run_agent(agent_config(tmp_path, crate, mosquitto))
    for i in range(3):
        run.sample(TS + i * 1000, probe1=-170.0 + i)
    wait_until(lambda: len(listener.telemetry()) == 3, 10, "3 messages")
    wait_until(lambda: run.agent.forwarder.published == 3, 5, "3 PUBACKs")
    assert len(run.agent.spool) == 3
    send_ack(mosquitto, crate, 1)
    wait_until(lambda: len(run.agent.spool) == 1, 5, "prune through seq 1")
    assert run.agent.spool.first_seq() == 2


def test_ack_for_another_crate_is_ignored(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, run_agent: RunAgent
) -> None:
    """An ack naming a different crate than its topic prunes nothing."""
    crate = f"{crate_prefix}-X"
    run = run_agent(agent_config(tmp_path, crate, mosquitto))
    run.sample(TS, probe1=-170.0)
    wait_until(lambda: run.agent.forwarder.published == 1, 10, "PUBACK")
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    payload = b'{"v":1,"crate":"someone-else","stored_through":99}'
    client.publish(f"coldchain/v1/crates/{crate}/ack", payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    wait_until(lambda: run.agent.link.bad_acks == 1, 5, "bad ack counted")
    assert len(run.agent.spool) == 1


def test_unacknowledged_messages_are_published_again(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, listen: Listen, run_agent: RunAgent
) -> None:
    """Without a storage ack within ack_timeout_s the agent re-publishes; after the ack it stops."""
    crate = f"{crate_prefix}-R"
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/telemetry"])
    run = run_agent(agent_config(tmp_path, crate, mosquitto, spool="ack_timeout_s = 0.3"))
    run.sample(TS, probe1=-170.0)
    run.sample(TS + 1000, probe1=-169.0)
    wait_until(lambda: len(listener.telemetry()) >= 4, 10, "a second delivery")
    assert [m["seq"] for m in listener.telemetry()[:4]] == [0, 1, 0, 1]
    send_ack(mosquitto, crate, 1)
    wait_until(lambda: len(run.agent.spool) == 0, 5, "prune")
    settled = len(listener.telemetry())
    run.sample(TS + 2000, probe1=-168.0)
    wait_until(lambda: len(listener.telemetry()) == settled + 1, 5, "the new message")
    send_ack(mosquitto, crate, 2)
    wait_until(lambda: len(run.agent.spool) == 0, 5, "prune")
    assert [m["seq"] for m in listener.telemetry()[settled:]] == [2]


def test_backlog_drains_in_seq_order_while_sampling(
    tmp_path: Path, make_mosquitto: Callable[..., Mosquitto], crate_prefix: str, listen: Listen, run_agent: RunAgent
) -> None:
    """Readings taken with no broker are all delivered, in seq order, followed by those taken meanwhile."""
    crate = f"{crate_prefix}-D"
    broker = make_mosquitto()
    # a persistent session, so the broker queues for the listener whatever arrives before it reconnects
    listener = listen(broker, [f"coldchain/v1/crates/{crate}/telemetry"], client_id=f"{crate}-listener")
    broker.stop()
    run = run_agent(agent_config(tmp_path, crate, broker))
    for i in range(300):
        run.sample(TS + i * 1000, probe1=-170.0)
    wait_until(lambda: len(run.agent.spool) == 300, 10, "300 spooled")
    broker.start()
    for i in range(300, 320):
        run.sample(TS + i * 1000, probe1=-170.0)
    wait_until(lambda: len(listener.telemetry()) >= 320, 15, "320 messages")
    assert [m["seq"] for m in listener.telemetry()] == list(range(320))


def test_restarted_agent_resends_unacknowledged_and_continues_seq(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, listen: Listen, run_agent: RunAgent
) -> None:
    """After a restart, spooled-but-unacknowledged messages go out again and new ones continue the seq."""
    crate = f"{crate_prefix}-Q"
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/telemetry"])
    config = agent_config(tmp_path, crate, mosquitto)
    first = run_agent(config)
    first.sample(TS, probe1=-170.0)
    first.sample(TS + 1000, probe1=-170.0)
    wait_until(lambda: first.agent.forwarder.published == 2, 10, "2 PUBACKs")
    send_ack(mosquitto, crate, 0)
    wait_until(lambda: len(first.agent.spool) == 1, 5, "prune through 0")
    first.stop()
    second = run_agent(config)
    second.sample(TS + 2000, probe1=-170.0)
    wait_until(lambda: len(listener.telemetry()) >= 4, 10, "resend and new")
    assert [m["seq"] for m in listener.telemetry()] == [0, 1, 1, 2]


def test_full_spool_publishes_a_gap_event(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, listen: Listen, run_agent: RunAgent
) -> None:
    """When the bound forces readings out, a gap event names the dropped seq and ts range."""
    crate = f"{crate_prefix}-G"
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/events"])
    run = run_agent(agent_config(tmp_path, crate, mosquitto, spool="max_rows = 10"))
    for i in range(11):
        run.sample(TS + i * 1000, probe1=-170.0)
    gap = wait_until(lambda: listener.on("/events"), 10, "gap event")[0]
    assert gap["event"] == "gap"
    assert (gap["reason"], gap["first_seq"], gap["last_seq"], gap["count"]) == ("spool_full", 0, 0, 1)
    assert (gap["from_ts"], gap["to_ts"]) == (TS, TS)
    assert len(run.agent.spool) == 10


def test_reconnect_delay_doubles_with_jitter_and_cap() -> None:
    """Each back-off lies in the upper half of a doubling ceiling that stops at the maximum; reset starts over."""
    from edge.mqtt_link import Backoff

    backoff = Backoff(0.5, 10.0)
    delays = [backoff.next() for _ in range(12)]
    for step, delay in enumerate(delays):
        ceiling = min(10.0, 0.5 * 2**step)
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 9) for d in delays[6:]}) > 1
    backoff.reset()
    assert backoff.next() <= 0.5


def test_ack_below_the_oldest_spooled_seq_announces_the_missing_range(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, listen: Listen, run_agent: RunAgent
) -> None:
    """When the gateway still waits for seqs the spool dropped, a gap event tells it they are gone."""
    crate = f"{crate_prefix}-N"
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/events"])
    run = run_agent(agent_config(tmp_path, crate, mosquitto, spool="max_rows = 10"))
    for i in range(20):
        run.sample(TS + i * 1000, probe1=-170.0)
    wait_until(lambda: run.agent.spool.first_seq() == 10, 10, "seq 0..9 dropped")
    send_ack(mosquitto, crate, 3)
    got = wait_until(
        lambda: [e for e in listener.on("/events") if e.get("reason") == "not_in_spool"], 10, "gap announcement"
    )
    assert (got[0]["first_seq"], got[0]["last_seq"], got[0]["count"]) == (4, 9, 6)


def test_ack_beyond_any_sent_seq_renumbers_the_spool(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, listen: Listen, run_agent: RunAgent
) -> None:
    """A crate whose seq restarted (spool lost) continues above what the gateway already stored."""
    crate = f"{crate_prefix}-Z"
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/#"])
    run = run_agent(agent_config(tmp_path, crate, mosquitto))
    run.sample(TS, probe1=-170.0)
    run.sample(TS + 1000, probe1=-170.5)
    wait_until(lambda: run.agent.forwarder.published == 2, 10, "2 PUBACKs")
    send_ack(mosquitto, crate, 500)
    wait_until(lambda: len(listener.telemetry()) >= 4, 10, "renumbered messages")
    run.sample(TS + 2000, probe1=-171.0)
    wait_until(lambda: len(listener.telemetry()) >= 5, 10, "a new message")
    assert [(m["seq"], m["ts"]) for m in listener.telemetry()] == [
        (0, TS),
        (1, TS + 1000),
        (501, TS),
        (502, TS + 1000),
        (503, TS + 2000),
    ]
    reset = [e for e in listener.on("/events") if e["event"] == "seq_reset"]
    assert (reset[0]["stored_through"], reset[0]["shift"]) == (500, 501)


def test_failing_probe_driver_is_restarted(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, listen: Listen, run_agent: RunAgent
) -> None:
    """A driver that raises is logged and started again; its samples then flow."""
    import threading

    from coldchain.wire import Reading
    from edge.events import Event, Sample

    class Flaky:
        def __init__(self) -> None:
            self.runs = 0

        def run(self, emit: Callable[[Event], None], stop: threading.Event) -> None:
            self.runs += 1
            if self.runs == 1:
                raise RuntimeError("driver bug")
            emit(Sample(TS, 0, (Reading("probe1", -170.0),)))
            stop.wait()

    crate = f"{crate_prefix}-F"
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/telemetry"])
    flaky = Flaky()
    run_agent(agent_config(tmp_path, crate, mosquitto), probes=[flaky])
    got = wait_until(listener.telemetry, 10, "a sample after the restart")
    assert got[0]["readings"] == [{"sensor": "probe1", "value_c": -170.0}]
    assert flaky.runs == 2


def test_no_republish_storm_while_the_gateway_waits_for_dropped_seqs(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, listen: Listen, run_agent: RunAgent
) -> None:
    """When stored_through is stuck below the spool's oldest seq, the ack timeout does not re-send the spool."""
    crate = f"{crate_prefix}-M"
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/telemetry"])
    run = run_agent(agent_config(tmp_path, crate, mosquitto, spool="max_rows = 10\nack_timeout_s = 0.2"))
    for i in range(20):
        run.sample(TS + i * 1000, probe1=-170.0)
    wait_until(lambda: len(listener.telemetry()) >= 10, 10, "the spool's 10 messages")
    send_ack(mosquitto, crate, 3)
    wait_until(lambda: run.agent.forwarder._acked_through == 3, 5, "ack seen")
    settled = len(listener.telemetry())
    time.sleep(0.8)  # four ack timeouts
    assert len(listener.telemetry()) == settled
