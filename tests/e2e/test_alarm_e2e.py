"""Alarm rules end to end through the real system: the start delay after a crate is switched on, and a late backlog.

Probe board (``coldchain sim`` or a pty the test writes) -> edge agent -> mosquitto -> gateway -> InfluxDB,
the retained alarm topics and a real local webhook receiver.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from edge_helpers import AgentProcess, InProcessAgent, Listener, PtyBoard, agent_config, write_config
from gateway_helpers import PROFILES, ROOT, Connect, GatewayProcess, count, gateway_config, wait_until
from notify_helpers import Receiver, start_receiver, webhook_channel
from sim_helpers import BOARD_CLOCK, running_sim, sim_agent_config

from cli.services import InfluxDB, Mosquitto
from coldchain.wire import Reading
from edge.clock import EARLIEST_PLAUSIBLE_MS, Clock
from edge.events import PowerOn, Sample

pytestmark = pytest.mark.integration

MIN_MS = 60_000
HOUR_MS = 3_600_000

# a profile whose only rule raises at once: any reading judged during the start delay would raise it
SETTLING_PROFILE = """
[settling]
description = "test: fresh cells whose probes settle for 5 minutes after the crate is switched on"
start_delay_s = 300
[[settling.rules]]
name = "critical_high"
kind = "high"
threshold_c = 8.0
severity = "critical"
"""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _alarms(influxdb: InfluxDB, database: str, crate: str, rule: str = "critical_high") -> list[dict[str, Any]]:
    return influxdb.rows(f"SELECT * FROM alarm WHERE crate = '{crate}' AND rule = '{rule}'", database)


def _sim_agent_config(directory: Path, crate: str, broker: Mosquitto, device: str) -> Path:
    """An agent reading a simulated board on its clock, waiting generously for the board's first heartbeat."""
    return sim_agent_config(
        directory, crate, broker, device, profile="settling", probe_extra=f"{BOARD_CLOCK}power_on_wait_s = 5\n"
    )


@pytest.fixture
def board() -> Iterator[PtyBoard]:
    """A probe board on a real pseudo-terminal."""
    pty = PtyBoard()
    yield pty
    pty.close()


def test_agent_dates_the_switch_on_from_the_board_heartbeat(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, board: PtyBoard
) -> None:
    """Board time minus the heartbeat's uptime is each reading's powered_on, the readings before the first
    heartbeat included (they wait for it); an uptime that goes back is a reboot, dated afresh."""
    crate = f"{crate_prefix}-on"
    listener = Listener(mosquitto, [f"coldchain/v1/crates/{crate}/telemetry"])
    probe = 'time_source = "board"\npower_on_wait_s = 5'
    agent = AgentProcess(write_config(tmp_path, crate, mosquitto, board.device, probe=probe))
    t0 = _now_ms() - HOUR_MS
    try:
        agent.wait_log("opened")
        board.tick({"probe1": -170.0, "probe2": -171.0}, board_ms=t0 + 30_000)
        board.heartbeat(30)  # the agent opened a board switched on 30 s before that tick
        board.tick({"probe1": -170.0, "probe2": -171.0}, board_ms=t0 + 31_000)
        board.tick({"probe1": -170.0, "probe2": -171.0}, board_ms=t0 + 100_000)
        board.heartbeat(2)  # browned out and rebooted 2 s before
        board.tick({"probe1": -170.0, "probe2": -171.0}, board_ms=t0 + 101_000)
        got = wait_until(lambda: len(listener.telemetry()) >= 4 and listener.telemetry(), 10, "4 messages")
    finally:
        agent.stop()
        listener.close()
    assert [(m["ts"] - t0, m["powered_on"] - t0) for m in got] == [
        (30_000, 0),
        (31_000, 0),
        (100_000, 0),
        (101_000, 98_000),
    ]


def test_switch_on_time_of_a_reading_held_for_an_unset_clock_moves_with_its_correction(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str
) -> None:
    """A Pi booted without the time: the reading waits for its board's heartbeat and for the clock; once
    NTP answers, ts and powered_on are both restamped from the monotonic clock, 20 s apart as measured."""
    crate = f"{crate_prefix}-unset"
    offset = EARLIEST_PLAUSIBLE_MS + HOUR_MS  # wall = monotonic + offset once the clock is set
    clock_set = False

    def mono() -> int:
        return time.monotonic_ns() // 1_000_000

    def wall() -> int:
        return mono() + offset if clock_set else 1_000_000 + mono() % 100_000  # 1970

    listener = Listener(mosquitto, [f"coldchain/v1/crates/{crate}/telemetry"])
    run = InProcessAgent(agent_config(tmp_path, crate, mosquitto), clock=Clock(wall, mono, "boot-A"))
    try:
        wait_until(lambda: run.agent.link.connected, 10, "connected")
        taken = mono()
        readings = (Reading("probe1", -170.0),)
        run.agent.inbox.put(Sample(wall(), taken, readings, probe="board", power_on_by=taken + 10_000))
        run.agent.inbox.put(PowerOn("board", taken - 20_000))
        wait_until(lambda: b"powered_on" in (run.agent.spool.payload(0) or b""), 5, "the switch-on time spooled")
        time.sleep(0.2)
        assert listener.telemetry() == []  # still held for the clock
        clock_set = True
        got = wait_until(listener.telemetry, 10, "released")
    finally:
        run.stop()
        listener.close()
    assert (got[0]["ts"], got[0]["powered_on"], got[0]["ts_corrected"]) == (
        taken + offset,
        taken - 20_000 + offset,
        True,
    )


def test_start_delay_keeps_a_warm_switch_on_quiet_and_alarms_after_it(
    tmp_path: Path, make_mosquitto: Callable[..., Mosquitto], influxdb: InfluxDB, database: str, crate_prefix: str
) -> None:
    """Two crates switched on at 12 °C (limit 8 °C, 5-min start delay): one cools into range within the delay and
    raises nothing; the other stays warm and raises at its first reading after the delay, started there."""
    mosquitto = make_mosquitto()  # of its own: the alarm it raises stays retained on it
    crates = {"cools": f"{crate_prefix}-cools", "warm": f"{crate_prefix}-warm"}
    traces = {"cools": ("--warm-rate", "-2"), "warm": ()}  # °C per minute from the switch-on
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(PROFILES.read_text() + SETTLING_PROFILE)
    assignments = "".join(f'[crates."{c}"]\nprofile = "settling"\n' for c in crates.values())
    config = gateway_config(
        tmp_path, mosquitto, influxdb, database, assignments + "[alarms]\nhold_s = 0\nlate_after_s = 86400\n"
    )
    config.write_text(config.read_text().replace(json.dumps(str(PROFILES)), json.dumps(str(profiles))))
    epoch = _now_ms() - 2 * HOUR_MS  # the gateway refuses timestamps from the future
    agents: list[subprocess.Popen[bytes]] = []
    with GatewayProcess(config, tmp_path / "gateway.log"), contextlib.ExitStack() as stack:
        try:
            sims = []
            for name, crate in crates.items():
                args = ("--start", "12", *traces[name], "--noise", "0", "--period", "60", "--duration", "900")
                args += ("--speed", "100000", "--epoch-ms", str(epoch), "--link", str(tmp_path / f"{name}.tty"))
                sim = stack.enter_context(running_sim(*args))
                agent_config = _sim_agent_config(tmp_path / name, crate, mosquitto, sim.device)
                log = stack.enter_context((tmp_path / name / "agent.log").open("wb"))
                command = [sys.executable, "-m", "edge", "--config", str(agent_config)]
                agents.append(subprocess.Popen(command, stdout=log, stderr=log, cwd=ROOT))
                sims.append(sim)
            assert [sim.process.wait(30) for sim in sims] == [0, 0]
            for crate in crates.values():
                wait_until(lambda c=crate: count(influxdb, database, c) >= 15, 20, f"15 readings of {crate}")
            warm = wait_until(lambda: _alarms(influxdb, database, crates["warm"]), 10, "the warm crate's alarm")
        finally:
            for agent in agents:
                agent.terminate()
            for agent in agents:
                agent.wait(10)
    # an alarm is written in the batch of the reading that raised it: all readings stored, all alarms are
    assert _alarms(influxdb, database, crates["cools"]) == []
    warm_early = f"SELECT COUNT(value_c) FROM temperature WHERE crate = '{crates['cools']}' AND value_c > 8.0"
    assert influxdb.rows(warm_early, database)[0]["count"] == 2  # 12 and 10 °C, inside the start delay
    assert [(row["state"], row["time"] - epoch, row["started_ts"] - epoch) for row in warm] == [  # type: ignore[operator]
        ("active", 5 * MIN_MS, 5 * MIN_MS)
    ]
    assert warm[0]["value_c"] == 12.0
    assert count(influxdb, database, crates["warm"]) == count(influxdb, database, crates["cools"]) == 15


def _critical(receiver: Receiver) -> list[tuple[dict[str, str], dict[str, Any], bytes]]:
    """The webhook's accepted notifications of critical_high: (headers, body, raw body)."""
    accepted = [(headers, json.loads(raw), raw) for headers, raw, _ in receiver.accepted()]
    return [(headers, body, raw) for headers, body, raw in accepted if body["alarm"]["rule"] == "critical_high"]


def _spooled(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT COUNT(*) FROM telemetry").fetchone()[0])


def test_excursion_in_a_late_backlog_is_reported_with_its_true_times_and_pages_nobody(
    tmp_path: Path,
    make_mosquitto: Callable[..., Mosquitto],
    influxdb: InfluxDB,
    database: str,
    crate_prefix: str,
    board: PtyBoard,
    connect: Connect,
) -> None:
    """Readings of three hours ago, spooled while the broker is down and holding a 4-minute excursion that
    ended, arrive when it is back: InfluxDB, the retained alarm and the webhook all say it was late, with its
    true start and end; nothing pages."""
    crate = f"{crate_prefix}-late"
    broker = make_mosquitto()
    receiver = Receiver()
    server = start_receiver(receiver)
    # hold_s = 60, the default: a backlog's alarm waits for its end, not announced mid-replay
    extra = webhook_channel(tmp_path, server) + "[alarms]\nhold_s = 60\n"
    config = write_config(tmp_path / "agent", crate, broker, board.device, probe='time_source = "board"')
    config.write_text(config.read_text().replace('path = "spool.sqlite"', 'path = "spool.sqlite"\nack_timeout_s = 2'))
    t0 = _now_ms() - 3 * HOUR_MS  # a flight ago
    values = [-170.0] * 8 + [-145.0] * 4 + [-170.0] * 8  # one reading a minute: over -150 °C from 8 to 12 min
    gateway = GatewayProcess(gateway_config(tmp_path, broker, influxdb, database, extra), tmp_path / "gateway.log")
    agent: AgentProcess | None = None
    try:
        broker.stop()
        agent = AgentProcess(config)
        agent.wait_log("opened")
        for minute, value in enumerate(values):
            board.tick({"probe1": value, "probe2": -171.0}, board_ms=t0 + minute * MIN_MS)
        wait_until(lambda: _spooled(tmp_path / "agent" / "spool.sqlite") == 20, 10, "20 readings spooled offline")
        broker.start()
        wait_until(lambda: count(influxdb, database, crate) == 40, 15, "the backlog's 40 readings stored")
        rows = wait_until(lambda: len(_alarms(influxdb, database, crate)) >= 2 and _alarms(influxdb, database, crate))
        wait_until(lambda: len(_critical(receiver)) >= 2, 10, "two notifications of critical_high")
        watcher = connect(broker, [f"coldchain/v1/alarms/{crate}/critical_high/probe1"])
        retained = wait_until(lambda: [m for m in watcher.received() if m["state"] == "cleared"], 5, "retained clear")
        watcher.close()
        time.sleep(0.5)  # a notification delivered twice would show up now
    finally:
        if agent is not None:
            agent.stop()
        gateway.stop()
        server.shutdown()
    start, end = t0 + 8 * MIN_MS, t0 + 12 * MIN_MS
    assert [
        (r["state"], r["change"], r["time"], r["started_ts"], r.get("ended_ts"), r["late"], r["pages"]) for r in rows
    ] == [
        ("active", "active", start, start, None, True, False),
        ("cleared", "cleared", end, start, end, True, False),
    ]
    assert {k: retained[-1][k] for k in ("state", "late", "started_ts", "ended_ts", "ts", "value_c")} == {
        "state": "cleared",
        "late": True,
        "started_ts": start,
        "ended_ts": end,
        "ts": end,
        "value_c": -170.0,
    }
    critical = _critical(receiver)  # each change once, never as a page, said to be late
    assert [(b["change"], b["pages"], b["alarm"]["late"], b["ts"]) for _, b, _ in critical] == [
        ("active", False, True, start),
        ("cleared", False, True, end),
    ]
    for headers, body, raw in critical:
        assert headers["X-Coldchain-Signature"] == hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
        assert headers["Idempotency-Key"] == body["key"] == f"{crate}/critical_high/probe1/{start}/{body['change']}"
