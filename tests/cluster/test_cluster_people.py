"""The people's programs on the NATS cluster: ``coldchain ack`` over MQTT 3.1.1, ``coldchain alerts``, the board."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from board_helpers import api, sign_in, start_board, write_config
from cluster_helpers import ClusterGateway, Mqtt311, cluster_gateway_config, create_stream, partitioned_cluster
from gateway_helpers import ROOT
from wait_helpers import wait_until

from cli.cluster_services import NatsCluster
from cli.services import InfluxDB
from coldchain.topics import telemetry_topic

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """One partitioned cluster with its telemetry stream for this module's tests."""
    cluster = partitioned_cluster(tmp_path_factory.mktemp("nats-people")).start()
    try:
        create_stream(cluster.urls)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def gateway(cluster: NatsCluster, influxdb: InfluxDB, database: str, tmp_path: Path) -> Iterator[ClusterGateway]:
    """The JetStream gateway on the cluster (every partition its own), storing in the real influxd."""
    config = cluster_gateway_config(tmp_path, cluster, influxdb, database, client_id=f"gw-{database}")
    gateway = ClusterGateway(config, tmp_path / "gateway.log")
    yield gateway
    gateway.stop()


def _excursion(cluster: NatsCluster, crate: str) -> None:
    """A crate on node 1 reports -140 °C now: a critical_high alarm on probe1 (cryo profile)."""
    client = Mqtt311(cluster.mqtt_brokers[0], crate)
    assert client.connected() == 0
    body = {"v": 1, "crate": crate, "seq": 1, "ts": int(time.time() * 1000),
            "readings": [{"sensor": "probe1", "value_c": -140.0}]}  # fmt: skip
    client.publish(telemetry_topic(crate), json.dumps(body).encode())
    client.close()


def _retained_alarm(cluster: NatsCluster, topic: str, state: str) -> dict[str, Any]:
    """The retained alarm on ``topic`` (read at QoS 0 from node 3) once it is in ``state``."""
    found: dict[str, Any] = {}

    def check() -> bool:
        reader = Mqtt311(cluster.mqtt_brokers[2], f"reader-{time.monotonic_ns()}")
        try:
            reader.connected()
            reader.subscribe(topic, qos=0)
            bodies = [json.loads(payload) for _, payload in reader.received(0.5)]
        finally:
            reader.close()
        found.update(bodies[-1] if bodies else {})
        return bool(bodies) and bodies[-1]["state"] == state

    wait_until(check, 20, f"the retained {state} alarm on {topic}")
    return found


def _coldchain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )


def test_ack_over_mqtt_311_is_recorded_and_answered(
    cluster: NatsCluster, gateway: ClusterGateway, influxdb: InfluxDB, database: str, crate_prefix: str, tmp_path: Path
) -> None:
    """``coldchain ack`` with an agent's cluster config (brokers, protocol 3.1.1), its first node dead: it moves
    to the next node, the JetStream gateway records the ack, and the command exits 0 on its answer."""
    crate = f"{crate_prefix}-K"
    topic = f"coldchain/v1/alarms/{crate}/critical_high/probe1"
    _excursion(cluster, crate)
    _retained_alarm(cluster, topic, "active")
    nodes = ", ".join(f'"{b}"' for b in ["127.0.0.1:1", *cluster.mqtt_brokers[1:]])  # port 1: nobody listens
    config = tmp_path / "agent.toml"
    config.write_text(f'[mqtt]\nbrokers = [{nodes}]\nprotocol = "3.1.1"\n')
    done = _coldchain("ack", crate, "critical_high", "probe1", "--by", "Ana Ruiz", "--note", "re-iced",
                      "--config", str(config), "--timeout", "15")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"recorded: alarm {crate}/critical_high/probe1/")
    alarm = _retained_alarm(cluster, topic, "acknowledged")
    assert (alarm["acknowledged_by"], alarm["note"]) == ("Ana Ruiz", "re-iced")
    query = f'SELECT "by", "note" FROM "alarm" WHERE "crate" = \'{crate}\' AND "state" = \'acknowledged\''
    wait_until(lambda: influxdb.rows(query, database), 10, "the acknowledgement's audit point")
    assert [(r["by"], r["note"]) for r in influxdb.rows(query, database)] == [("Ana Ruiz", "re-iced")]
    # and a second one is refused by the gateway, with its reason, over 3.1.1 as over 5
    again = _coldchain("ack", crate, "critical_high", "probe1", "--by", "Ben", "--note", "me too",
                       "--host", "127.0.0.1", "--port", str(cluster.nodes[0].mqtt_port), "--protocol", "3.1.1",
                       "--timeout", "15")  # fmt: skip
    assert again.returncode == 1
    assert "REFUSED by the gateway: ack_rejected:" in again.stderr


def test_alerts_lists_the_clusters_alarm(cluster: NatsCluster, gateway: ClusterGateway, crate_prefix: str) -> None:
    """``coldchain alerts`` against another node lists the alarms the JetStream gateway raised."""
    crate = f"{crate_prefix}-L"
    _excursion(cluster, crate)
    _retained_alarm(cluster, f"coldchain/v1/alarms/{crate}/critical_high/probe1", "active")
    done = _coldchain("alerts", "--json", "--host", "127.0.0.1", "--port", str(cluster.nodes[1].mqtt_port))
    assert done.returncode == 0, done.stderr
    mine = [a for a in json.loads(done.stdout) if a["crate"] == crate]
    assert ("critical_high", "probe1", "active") in {(a["rule"], a["sensor"], a["state"]) for a in mine}


def test_board_shows_a_crates_live_reading_from_its_partition(
    cluster: NatsCluster, gateway: ClusterGateway, influxdb: InfluxDB, database: str, crate_prefix: str, tmp_path: Path
) -> None:
    """The board on a node receives a crate's telemetry where the nodes map it (its partition) and shows it,
    and the alarm the JetStream gateway raised. (A new subscription takes seconds to carry telemetry on the
    cluster: the crate reports every second, as a live one would, until the board shows a reading.)"""
    crate = f"{crate_prefix}-B"
    config = write_config(tmp_path / "board", cluster.nodes[1].mqtt_port, influxdb.url, database)
    board = start_board(config)
    client = Mqtt311(cluster.mqtt_brokers[0], crate)
    try:
        assert client.connected() == 0
        _status, cookie = sign_in(board)
        sent: list[int] = []

        def shown() -> dict[str, Any] | None:
            seq = len(sent) + 1
            body = {"v": 1, "crate": crate, "seq": seq, "ts": int(time.time() * 1000),
                    "readings": [{"sensor": "probe1", "value_c": -140.0 - seq / 10}]}  # fmt: skip
            client.publish(telemetry_topic(crate), json.dumps(body).encode())
            sent.append(seq)
            time.sleep(1)
            state = api(board, cookie, "/api/state")[1]
            card = next((c for c in state["crates"] if c["crate"] == crate and c["readings"]), None)
            alarmed = any(a["crate"] == crate and a["rule"] == "critical_high" for a in state["alarms"])
            return card if card is not None and alarmed else None

        card = wait_until(shown, 30, "the crate's live reading and its alarm on the board")
        assert card["last_seq"] in sent
        assert [r["value_c"] for r in card["readings"]] == [-140.0 - card["last_seq"] / 10]
    finally:
        client.close()
        board.stop()
