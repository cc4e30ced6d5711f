"""Signed telemetry through a real gateway: forgeries, unknown crates and replays refused; an intact archive."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from edge_helpers import InProcessAgent, agent_config
from gateway_helpers import (
    ROOT,
    Client,
    Connect,
    GatewayProcess,
    count,
    gateway_config,
    seqs_stored,
    wait_until,
)

from cli.services import InfluxDB, Mosquitto
from coldchain.signing import sign

pytestmark = pytest.mark.integration


def _signed(crate: str, seq: int, key: bytes, value: float = -170.0) -> bytes:
    body: dict[str, Any] = {
        "v": 1, "crate": crate, "seq": seq, "ts": int(time.time() * 1000) - 100_000 + seq,
        "readings": [{"sensor": "probe1", "value_c": value}],
    }  # fmt: skip
    body["sig"] = sign(body, key)
    return json.dumps(body).encode()


def _reasons(watcher: Client, crate: str) -> list[str]:
    return [r["reason"] for r in watcher.received("coldchain/v1/rejected") if r.get("crate") == crate]


@pytest.fixture
def secured(tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str) -> Any:
    """A gateway requiring signatures, with one provisioned crate and an archive; yields (crate, key, archive)."""
    keys = tmp_path / "keys"
    keys.mkdir()
    crate, key = f"{crate_prefix}-s", secrets.token_bytes(32)
    (keys / f"{crate}.key").write_text(key.hex() + "\n")
    archive = tmp_path / "evidence.jsonl"
    extra = f'[security]\nkeys_dir = "{keys}"\nrequire_signatures = true\narchive = "{archive}"\n'
    gateway = GatewayProcess(gateway_config(tmp_path, mosquitto, influxdb, database, extra), tmp_path / "gw.log")
    yield crate, key, archive, keys
    gateway.stop()


def test_signed_messages_are_stored_and_forgeries_refused(
    secured: Any, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, connect: Connect
) -> None:
    """Good signatures stored; a forged seq 3 is refused (reason signature) and does not settle seq 3."""
    crate, key, _, _ = secured
    watcher = connect(mosquitto, ["coldchain/v1/rejected"])
    topic = f"coldchain/v1/crates/{crate}/telemetry"
    watcher.publish(topic, _signed(crate, 1, key))
    watcher.publish(topic, _signed(crate, 2, key))
    watcher.publish(topic, _signed(crate, 3, secrets.token_bytes(32), value=-100.0))
    wait_until(lambda: "signature" in _reasons(watcher, crate), 5, "signature rejection")
    watcher.publish(topic, _signed(crate, 3, key))
    wait_until(lambda: count(influxdb, database, crate) == 3, 5, "three genuine readings")
    assert seqs_stored(influxdb, database, crate) == [1, 2, 3]
    assert influxdb.rows(f"SELECT * FROM temperature WHERE crate = '{crate}' AND value_c > -150", database) == []


def test_replays_are_stored_once_and_altered_replays_refused(
    secured: Any, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, connect: Connect
) -> None:
    """An exact replay of a stored message is a duplicate; a replay with a changed value fails its signature."""
    crate, key, _, _ = secured
    watcher = connect(mosquitto, ["coldchain/v1/rejected"])
    topic = f"coldchain/v1/crates/{crate}/telemetry"
    original = _signed(crate, 1, key)
    watcher.publish(topic, original)
    wait_until(lambda: count(influxdb, database, crate) == 1, 5, "the original")
    watcher.publish(topic, original)
    altered = json.loads(original)
    altered["readings"][0]["value_c"] = -120.0
    watcher.publish(topic, json.dumps(altered).encode())
    watcher.publish(topic, _signed(crate, 2, key))
    wait_until(lambda: count(influxdb, database, crate) == 2, 5, "the next genuine reading")
    wait_until(lambda: "signature" in _reasons(watcher, crate), 5, "altered replay rejected")
    assert seqs_stored(influxdb, database, crate) == [1, 2]
    assert [
        r["value_c"] for r in influxdb.rows(f"SELECT value_c FROM temperature WHERE crate = '{crate}'", database)
    ] == [
        -170.0,
        -170.0,
    ]


def test_unknown_and_unsigned_crates_are_refused(
    secured: Any, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, connect: Connect
) -> None:
    """A crate without a key is refused as unknown_crate; an unsigned message of a known crate as signature."""
    crate = secured[0]
    stranger = f"{crate}-x"
    watcher = connect(mosquitto, ["coldchain/v1/rejected"])
    watcher.send(stranger, [1])
    watcher.send(crate, [1])
    wait_until(lambda: _reasons(watcher, stranger) == ["unknown_crate"], 5, "unknown crate rejected")
    wait_until(lambda: _reasons(watcher, crate) == ["signature"], 5, "unsigned rejected")
    query = "SELECT COUNT(bytes) FROM rejected WHERE reason = 'unknown_crate' OR reason = 'signature'"
    wait_until(lambda: influxdb.rows(query, database), 5, "rejected points")
    assert count(influxdb, database, stranger) == 0
    assert count(influxdb, database, crate) == 0


def test_archive_holds_every_accepted_message_and_verifies_intact(
    secured: Any, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, connect: Connect
) -> None:
    """Accepted messages (not the forgery) are archived; ``coldchain verify-archive --keys-dir`` reports intact."""
    crate, key, archive, keys = secured
    client = connect(mosquitto)
    topic = f"coldchain/v1/crates/{crate}/telemetry"
    for seq in (1, 2, 3):
        client.publish(topic, _signed(crate, seq, key))
    client.publish(topic, _signed(crate, 4, secrets.token_bytes(32)))
    client.publish(topic, _signed(crate, 4, key))
    wait_until(lambda: count(influxdb, database, crate) == 4, 5, "four readings")
    wait_until(lambda: archive.is_file() and len(archive.read_bytes().splitlines()) == 4, 5, "four archive lines")
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "verify-archive", str(archive), "--keys-dir", str(keys)],
        cwd=ROOT, capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "intact, 4 lines" in done.stdout
    assert [json.loads(json.loads(line)["payload"])["seq"] for line in archive.read_bytes().splitlines()] == [
        1,
        2,
        3,
        4,
    ]


def test_signing_agent_whose_spool_overflowed_offline_is_stored_and_its_spool_empties(
    tmp_path: Path, make_mosquitto: Any, influxdb: InfluxDB, database: str, crate_prefix: str
) -> None:
    """A real agent signs; offline, its full spool drops seqs 3..12 and says so; the gateway (signatures required)
    stores the rest, settles the lost seqs, and its stored_through lets the agent empty its spool."""
    broker = make_mosquitto()
    crate = f"{crate_prefix}-e"
    keys = tmp_path / "keys"
    keys.mkdir()
    key = secrets.token_hex(32)
    (keys / f"{crate}.key").write_text(key + "\n")
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "signing.key").write_text(key + "\n")
    extra = f'[security]\nkeys_dir = "{keys}"\nrequire_signatures = true\n'
    gateway = GatewayProcess(gateway_config(tmp_path, broker, influxdb, database, extra), tmp_path / "gw.log")
    agent_toml = agent_config(
        tmp_path / "agent", crate, broker, spool="max_rows = 10", extra='[signing]\nkey_file = "signing.key"\n'
    )
    run = InProcessAgent(agent_toml)
    start = int(time.time() * 1000) - 120_000
    try:
        for i in range(3):
            run.sample(start + i * 1000, probe1=-170.0)
        wait_until(lambda: count(influxdb, database, crate) == 3, 10, "seqs 0..2 stored")
        wait_until(lambda: run.agent.spool.next_seq == 3 and len(run.agent.spool) == 0, 10, "seqs 0..2 pruned")
        broker.stop()
        for i in range(3, 23):
            run.sample(start + i * 1000, probe1=-170.0)
        wait_until(lambda: run.agent.spool.first_seq() == 13, 10, "seqs 3..12 dropped by the full spool")
        broker.start()
        wait_until(lambda: count(influxdb, database, crate) == 13, 20, "13 readings stored")
        wait_until(lambda: len(run.agent.spool) == 0, 10, "spool emptied past the lost seqs")
    finally:
        run.stop()
        gateway.stop()
    assert seqs_stored(influxdb, database, crate) == [0, 1, 2, *range(13, 23)]
    lost = influxdb.rows(f"SELECT SUM(lost) FROM gap WHERE crate = '{crate}'", database)
    assert lost[0]["sum"] == 10
