"""Exactly once into InfluxDB: storage acks, de-duplication, gaps, and a durable session across gateway restarts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gateway_helpers import (
    TS,
    Client,
    GatewayProcess,
    count,
    gateway_config,
    wait_until,
)

from cli.services import InfluxDB, Mosquitto

pytestmark = pytest.mark.integration


@pytest.fixture
def config(tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str) -> Path:
    """A gateway config with a state file, on the session services."""
    return gateway_config(tmp_path, mosquitto, influxdb, database, '[state]\nfile = "state.sqlite"\n')


@pytest.fixture
def gateway(tmp_path: Path, config: Path):
    """A running gateway."""
    process = GatewayProcess(config, tmp_path / "gateway.log")
    yield process
    assert process.stop() == 0, process.stderr()


def _acks(client: Client, crate: str) -> list[int]:
    return [m["stored_through"] for m in client.received(f"coldchain/v1/crates/{crate}/ack")]


def _gaps(influxdb: InfluxDB, database: str, crate: str) -> list[tuple[int, int, int, str]]:
    rows = influxdb.rows(
        f"SELECT first_missing, last_missing, missing, state FROM gap WHERE crate = '{crate}'", database
    )
    return [(r["first_missing"], r["last_missing"], r["missing"], r["state"]) for r in rows]  # type: ignore[misc]


def test_storage_ack_reports_stored_through(gateway, mosquitto, influxdb, database, crate_prefix) -> None:
    """After storing seqs 1..3 the gateway publishes {"v":1,"crate":..,"stored_through":3} on the crate's ack topic."""
    crate = f"{crate_prefix}-K"
    client = Client(mosquitto, [f"coldchain/v1/crates/{crate}/ack"])
    client.send(crate, [1, 2, 3])
    wait_until(lambda: 3 in _acks(client, crate), 10, "stored_through 3")
    assert client.received(f"coldchain/v1/crates/{crate}/ack")[-1] == {"v": 1, "crate": crate, "stored_through": 3}
    assert count(influxdb, database, crate) == 3
    client.close()


def test_duplicate_is_stored_once(gateway, mosquitto, influxdb, database, crate_prefix) -> None:
    """A second message with a seq already stored changes nothing (its different value is not written)."""
    crate = f"{crate_prefix}-U"
    client = Client(mosquitto, [f"coldchain/v1/crates/{crate}/ack"])
    client.send(crate, [1, 2], value=-170.0)
    wait_until(lambda: 2 in _acks(client, crate), 10, "stored_through 2")
    client.send(crate, [2], value=-100.0)
    client.send(crate, [3], value=-170.0)
    wait_until(lambda: 3 in _acks(client, crate), 10, "stored_through 3")
    rows = influxdb.rows(f"SELECT value_c FROM temperature WHERE crate = '{crate}'", database)
    assert [r["value_c"] for r in rows] == [-170.0, -170.0, -170.0]
    client.close()


def test_gap_is_written_and_closed_by_late_messages(gateway, mosquitto, influxdb, database, crate_prefix) -> None:
    """Seqs 1,2,5 open gap 3..4 (stored_through stays 2); 3 and 4 arriving late close it and move the ack to 5."""
    crate = f"{crate_prefix}-G"
    client = Client(mosquitto, [f"coldchain/v1/crates/{crate}/ack"])
    client.send(crate, [1, 2, 5])
    wait_until(lambda: _gaps(influxdb, database, crate) == [(3, 4, 2, "open")], 10, "open gap 3..4")
    wait_until(lambda: 2 in _acks(client, crate), 5, "stored_through 2")
    client.send(crate, [3])
    wait_until(lambda: _gaps(influxdb, database, crate) == [(3, 4, 1, "open")], 10, "gap down to 1 missing")
    client.send(crate, [4])
    wait_until(lambda: _gaps(influxdb, database, crate) == [(3, 4, 0, "closed")], 10, "closed gap")
    wait_until(lambda: 5 in _acks(client, crate), 5, "stored_through 5")
    assert count(influxdb, database, crate) == 5
    rows = influxdb.rows(f"SELECT * FROM gap WHERE crate = '{crate}'", database)
    assert rows[0]["time"] == TS + 5000
    client.close()


def test_rejected_seq_counts_as_handled(gateway, mosquitto, influxdb, database, crate_prefix) -> None:
    """A message refused for an implausible value opens no gap and does not hold back stored_through."""
    crate = f"{crate_prefix}-H"
    client = Client(mosquitto, [f"coldchain/v1/crates/{crate}/ack"])
    client.send(crate, [1])
    client.send(crate, [2], value=999.0)
    client.send(crate, [3])
    wait_until(lambda: 3 in _acks(client, crate), 10, "stored_through 3")
    assert _gaps(influxdb, database, crate) == []
    assert count(influxdb, database, crate) == 2
    client.close()


def test_messages_sent_while_gateway_is_down_arrive_after_restart(
    tmp_path, config, mosquitto, influxdb, database, crate_prefix
) -> None:
    """The session persists: what is published while the gateway is stopped is stored when it returns, no gap."""
    crate = f"{crate_prefix}-S"
    first = GatewayProcess(config, tmp_path / "gateway-1.log")
    client = Client(mosquitto)
    client.send(crate, range(1, 11))
    wait_until(lambda: count(influxdb, database, crate) == 10, 10, "10 points")
    assert first.stop() == 0
    client.send(crate, range(11, 51))
    second = GatewayProcess(config, tmp_path / "gateway-2.log")
    wait_until(lambda: count(influxdb, database, crate) == 50, 10, "50 points after restart")
    assert _gaps(influxdb, database, crate) == []
    assert second.stop() == 0
    client.close()


def test_shared_subscription_splits_the_stream_without_loss(
    tmp_path, make_mosquitto, influxdb, database, crate_prefix
) -> None:
    """Two gateways in one $share group each take part of the stream; together they store every reading once."""
    # a broker of its own: the health files count every message the group receives, and on the session
    # broker status and events of other tests' crates (agents still stopping, wills) would be counted too
    mosquitto = make_mosquitto()
    group = f'shared_group = "g{crate_prefix.replace("-", "")}"'
    monitoring = '[monitoring]\ninterval = "0.2s"\nhealth_file = "health.json"\n'
    gateways = []
    for name in ("a", "b"):
        workdir = tmp_path / name
        workdir.mkdir()
        config = gateway_config(workdir, mosquitto, influxdb, database, monitoring, client_id=f"{database}-{name}")
        config.write_text(config.read_text().replace("[influxdb]", f"{group}\n\n[influxdb]", 1))
        gateways.append(GatewayProcess(config, workdir / "gateway.log"))
    crates = [f"{crate_prefix}-{i}" for i in range(4)]
    client = Client(mosquitto)
    for crate in crates:
        client.send(crate, range(1, 51))
    wait_until(lambda: sum(count(influxdb, database, c) for c in crates) == 200, 15, "200 points")

    def received() -> list[int]:
        files = [tmp_path / n / "health.json" for n in ("a", "b")]
        return [json.loads(f.read_text())["received"] if f.exists() else 0 for f in files]

    wait_until(lambda: sum(received()) == 200, 5, "both health files counting 200")
    assert min(received()) > 0
    for gateway in gateways:
        assert gateway.stop() == 0
    client.close()


def test_network_thread_failure_is_reported(mosquitto, crate_prefix) -> None:
    """An unexpected error on the network thread sets link.failed, which stops the gateway (exit 1)."""
    from gateway.config import MqttConfig
    from gateway.mqtt_link import MqttLink

    class Broken:
        def deliver(self, deliveries: object) -> None:
            raise RuntimeError("a bug in the hand-over")

        def read_budget(self) -> int:
            return 1 << 30

    crate = f"{crate_prefix}-N"
    subscribed = []
    config = MqttConfig(host=mosquitto.host, port=mosquitto.port, client_id=f"fail-{crate}", session_expiry_s=60)
    link = MqttLink(config, lambda: subscribed.append(True))
    link.start(Broken())
    wait_until(lambda: subscribed, 10, "subscription")
    client = Client(mosquitto)
    client.send(crate, [1])
    wait_until(link.failed.is_set, 10, "link.failed")
    link.stop()
    client.close()


def test_a_backlog_is_read_no_faster_than_it_is_stored(tmp_path, mosquitto, influxdb, database, crate_prefix) -> None:
    """After an outage mosquitto 2.0.11 sends far beyond Receive Maximum once the gateway acknowledges
    (eclipse/mosquitto#2301); the gateway still never holds more than twice its window."""
    extra = '[state]\nfile = "state.sqlite"\n[monitoring]\ninterval = "0.1s"\nhealth_file = "health.json"\n'
    config = gateway_config(tmp_path, mosquitto, influxdb, database, extra)
    text = config.read_text().replace("[mqtt]\n", "[mqtt]\nreceive_maximum = 10\n")
    config.write_text(text.replace("[batch]\n", "[batch]\nsize = 5\n"))
    crate = f"{crate_prefix}-F"
    first = GatewayProcess(config, tmp_path / "gateway-1.log")  # makes the durable session
    assert first.stop() == 0
    client = Client(mosquitto)
    client.send(crate, range(1, 2001))
    second = GatewayProcess(config, tmp_path / "gateway-2.log")
    wait_until(lambda: count(influxdb, database, crate) == 2000, 60, "the backlog stored")
    health = tmp_path / "health.json"

    def figures() -> dict[str, int] | None:
        body = json.loads(health.read_text()) if health.exists() else {}
        return body if body.get("received", 0) >= 2000 else None

    held_max = wait_until(figures, 5, "health after the backlog")["held_max"]
    assert held_max <= 2 * 10  # twice Receive Maximum
    assert second.stop() == 0
    client.close()
