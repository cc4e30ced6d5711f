"""No gateway confirms a reading it has not stored: crates met without state are waited for from their held_from.

Real mosquitto, influxd and gateway processes; in the first test a real agent reading a simulated board.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from edge_helpers import AgentProcess
from gateway_helpers import Client, Connect, GatewayProcess, count, gaps_stored, gateway_config, seqs_stored, wait_until
from sim_helpers import running_sim, sim_agent_config

from cli.services import InfluxDB, Mosquitto

pytestmark = pytest.mark.integration

STATE = '[state]\nfile = "state.sqlite"\n'


def _spool(path: Path) -> tuple[int, int | None, int]:
    """(rows, lowest seq, next seq) of a running agent's spool."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows, lowest = db.execute("SELECT COUNT(*), MIN(seq) FROM telemetry").fetchone()
        next_seq = db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
    return int(rows), lowest, int(next_seq[0]) if next_seq else 0


def _acks(client: Client, crate: str) -> list[int]:
    return [m["stored_through"] for m in client.received(f"coldchain/v1/crates/{crate}/ack")]


def test_readings_taken_before_any_gateway_existed_are_all_stored(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str
) -> None:
    """An agent spools and publishes while no gateway has a session; the gateway that then starts meets the crate
    mid-stream, yet every reading taken before it existed is stored, and the spool kept each until it was."""
    crate = f"{crate_prefix}-A"
    link = tmp_path / "tty"
    config = sim_agent_config(tmp_path / "crate", crate, mosquitto, str(link), probe_extra="tick_timeout_s = 0.1\n")
    config.write_text(config.read_text().replace("[spool]\n", "[spool]\nack_timeout_s = 1.0\n"))
    spool = config.parent / "spool.sqlite"
    with running_sim("--period", "0.1", "--start", "-185", "--duration", "0", "--link", str(link)) as sim:
        agent = AgentProcess(config)
        try:
            agent.wait_log(f"agent for crate {crate} started")  # its spool is made
            wait_until(lambda: _spool(spool)[0] >= 20, 20, "20 readings spooled")
            rows, lowest, next_seq = _spool(spool)
            assert (lowest, rows) == (0, next_seq)  # published into the void, nothing pruned
            gateway = GatewayProcess(gateway_config(tmp_path, mosquitto, influxdb, database), tmp_path / "gateway.log")
            wait_until(lambda: count(influxdb, database, crate) > next_seq, 20, "the readings of before and after")
            assert sim.stop() == 0
            wait_until(lambda: _spool(spool)[0] == 0, 20, "an empty spool")
            produced = _spool(spool)[2]
            wait_until(lambda: count(influxdb, database, crate) == produced, 10, f"{produced} readings stored")
            assert sorted(seqs_stored(influxdb, database, crate)) == list(range(produced))
            assert {state for *_, state in gaps_stored(influxdb, database, crate)} <= {"closed"}
            assert gateway.stop() == 0
        finally:
            agent.stop()


def test_a_gateway_restarted_without_its_state_file_waits_for_what_the_crate_holds(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str, connect: Connect
) -> None:
    """State file deleted across a restart: the gateway meets the crate at seq 10 holding 5..9 unconfirmed (sent
    while nothing received them) and confirms no more than 4 until they come again; then all 11 are stored."""
    crate = f"{crate_prefix}-B"
    config = gateway_config(tmp_path, mosquitto, influxdb, database, STATE)
    client = connect(mosquitto, [f"coldchain/v1/crates/{crate}/ack"])
    first = GatewayProcess(config, tmp_path / "gateway-1.log")
    client.send(crate, range(5), held_from=0)
    wait_until(lambda: 4 in _acks(client, crate), 10, "stored_through 4")
    assert first.stop() == 0
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp_path / 'state.sqlite'}{suffix}").unlink(missing_ok=True)
    second = GatewayProcess(config, tmp_path / "gateway-2.log")
    heard = len(_acks(client, crate))
    client.send(crate, [10], held_from=5)
    wait_until(lambda: gaps_stored(influxdb, database, crate) == [(5, 9, 5, "open")], 10, "gap 5..9 open")
    wait_until(lambda: len(_acks(client, crate)) > heard, 10, "the new gateway's ack")
    assert _acks(client, crate)[heard:] == [4]
    client.send(crate, range(5, 10), held_from=5)
    wait_until(lambda: 10 in _acks(client, crate), 10, "stored_through 10")
    assert sorted(seqs_stored(influxdb, database, crate)) == list(range(11))
    assert gaps_stored(influxdb, database, crate) == [(5, 9, 0, "closed")]
    assert second.stop() == 0
    client.close()


def test_a_forgotten_crate_returning_with_a_backlog_is_waited_for(
    tmp_path: Path,
    make_mosquitto: Callable[[], Mosquitto],
    influxdb: InfluxDB,
    database: str,
    crate_prefix: str,
    connect: Connect,
) -> None:
    """Forgotten after forget_after, a crate whose 5..9 never reached the gateway returns with its backlog 10..14
    first (held_from 5): the gateway confirms no more than 4 until 5..9 come, then all 15 are stored."""
    # its own broker: on the session broker other tests' crates are forgotten too, and the log names only 20
    mosquitto = make_mosquitto()
    crate = f"{crate_prefix}-C"
    config = gateway_config(tmp_path, mosquitto, influxdb, database, STATE + 'forget_after = "2s"\n')
    client = connect(mosquitto, [f"coldchain/v1/crates/{crate}/ack"])
    gateway = GatewayProcess(config, tmp_path / "gateway.log")
    client.send(crate, range(5), held_from=0)
    wait_until(lambda: 4 in _acks(client, crate), 10, "stored_through 4")

    def forgotten() -> bool:
        return any("forgot" in line and crate in line for line in gateway.stderr().splitlines())

    wait_until(forgotten, 20, "the crate forgotten")
    heard = len(_acks(client, crate))
    client.send(crate, range(10, 15), held_from=5)
    wait_until(lambda: gaps_stored(influxdb, database, crate) == [(5, 9, 5, "open")], 10, "gap 5..9 open")
    wait_until(lambda: count(influxdb, database, crate) == 10 and len(_acks(client, crate)) > heard, 10, "an ack")
    assert set(_acks(client, crate)[heard:]) == {4}
    client.send(crate, range(5, 10), held_from=5)
    wait_until(lambda: 14 in _acks(client, crate), 10, "stored_through 14")
    assert sorted(seqs_stored(influxdb, database, crate)) == list(range(15))
    assert gaps_stored(influxdb, database, crate) == [(5, 9, 0, "closed")]
    assert gateway.stop() == 0
    client.close()
