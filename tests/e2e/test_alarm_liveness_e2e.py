"""Stale data and crate offline through the real system: sim -> agent -> broker -> gateway, on arrival time.

These two rules fire on silence, judged by the gateway's clock, so the scenarios of
tests/e2e/test_sim_e2e.py (event time, accelerated) cannot drive them: here a simulator
at real speed is frozen (SIGSTOP: a hung board, the agent stays online) and an agent
is SIGKILLed (its last will says offline), under a profile with short times.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from gateway_helpers import (
    PROFILES,
    ROOT,
    Client,
    Connect,
    GatewayProcess,
    count,
    gateway_config,
    wait_until,
)
from sim_helpers import SimProcess, running_sim, sim_agent_config

from cli.services import InfluxDB, Mosquitto

pytestmark = pytest.mark.integration

STALE_S = 3.0
OFFLINE_S = 5.0
# Each profile keeps the other rule out of the way: a restarted agent's first reading may come a while after
# it says online, and a frozen board's crate is online throughout.
LIVENESS_PROFILES = f"""
[hung_board]
description = "stale data after {STALE_S} s (tests)"
[[hung_board.rules]]
name = "stale"
kind = "stale"
severity = "warning"
after_s = {STALE_S}
[[hung_board.rules]]
name = "offline"
kind = "offline"
severity = "warning"
after_s = 600

[vanishing_crate]
description = "crate offline after {OFFLINE_S} s (tests)"
[[vanishing_crate.rules]]
name = "stale"
kind = "stale"
severity = "warning"
after_s = 600
[[vanishing_crate.rules]]
name = "offline"
kind = "offline"
severity = "warning"
after_s = {OFFLINE_S}
"""


def _gateway(tmp_path: Path, broker: Mosquitto, influx: InfluxDB, database: str, crates: dict[str, str]) -> Path:
    """A gateway config whose profiles are LIVENESS_PROFILES, each crate of ``crates`` on its profile."""
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(LIVENESS_PROFILES)
    assigned = "".join(f'[crates."{crate}"]\nprofile = "{profile}"\n' for crate, profile in crates.items())
    config = gateway_config(tmp_path, broker, influx, database, assigned)
    text = config.read_text().replace(json.dumps(str(PROFILES)), json.dumps(str(profiles)))
    config.write_text(text.replace('default = "cryo"', 'default = "hung_board"'))
    return config


@contextlib.contextmanager
def _crate(directory: Path, crate: str, broker: Mosquitto) -> Iterator[tuple[SimProcess, Path]]:
    """A simulated board at real speed (a reading every 0.25 s) and the agent config that reads it."""
    directory.mkdir()
    link = directory / "tty"
    config = sim_agent_config(directory, crate, broker, str(link), probe_extra="tick_timeout_s = 0.1\n")
    with running_sim("--period", "0.25", "--start", "-185", "--duration", "0", "--link", str(link)) as sim:
        try:
            yield sim, config
        finally:
            os.kill(sim.process.pid, signal.SIGCONT)  # a frozen sim cannot be stopped


class Agents:
    """The agent processes a test starts, each logging beside its config; all stopped at the end."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, config: Path) -> subprocess.Popen[bytes]:
        """``python -m edge --config CONFIG``."""
        with (config.parent / "agent.log").open("ab") as log:
            agent = subprocess.Popen(
                [sys.executable, "-m", "edge", "--config", str(config)], stdout=log, stderr=log, cwd=ROOT
            )
        self.started.append(agent)
        return agent

    def stop(self) -> None:
        """SIGTERM every agent still running, and reap them all."""
        for agent in self.started:
            if agent.poll() is None:
                agent.terminate()
        for agent in self.started:
            agent.wait(10)


def _forget(broker: Mosquitto, listener: Client, crates: list[str]) -> None:
    """Delete the retained alarms ``listener`` saw and the crates' statuses: the session broker's later users
    (the board's tests show every retained alarm) must not inherit this test's crates."""
    topics = {topic for topic, _, _ in list(listener.messages) if topic.startswith("coldchain/v1/alarms/")}
    topics |= {f"coldchain/v1/crates/{crate}/status" for crate in crates}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for info in [client.publish(topic, b"", qos=1, retain=True) for topic in sorted(topics)]:
            info.wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def _alarms(listener: Client, crate: str, rule: str) -> list[dict[str, Any]]:
    """The retained-state messages of ``crate``'s ``rule`` alarm received so far."""
    return listener.received(f"coldchain/v1/alarms/{crate}/{rule}/")


def _changes(listener: Client, crate: str, since_ms: int) -> list[tuple[str, str]]:
    """(rule, state) of the alarm messages of ``crate`` about conditions that began at or after ``since_ms``."""
    bodies = listener.received(f"coldchain/v1/alarms/{crate}/")
    return [(body["rule"], body["state"]) for body in bodies if body["started_ts"] >= since_ms]


def _statuses(listener: Client, crate: str) -> list[str]:
    return [body["state"] for body in listener.received(f"coldchain/v1/crates/{crate}/status")]


def _stored(influx: InfluxDB, database: str, crate: str) -> list[tuple[str, str]]:
    """(rule, state) of every alarm point of ``crate``, in time order."""
    rows = influx.rows(f"SELECT rule, state FROM alarm WHERE crate = '{crate}'", database)
    return [(str(row["rule"]), str(row["state"])) for row in rows]


def test_a_hung_board_raises_stale_data_after_its_time_and_clears_when_readings_resume(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str, connect: Connect
) -> None:
    """A sim frozen for less than after_s raises nothing; frozen longer, 'stale' is raised while the agent stays
    online, and cleared by the first reading after the sim resumes."""
    crate = f"{crate_prefix}-hung"
    config = _gateway(tmp_path, mosquitto, influxdb, database, {crate: "hung_board"})
    listener = connect(mosquitto, [f"coldchain/v1/alarms/{crate}/#", f"coldchain/v1/crates/{crate}/status"])
    agents = Agents()
    try:
        with GatewayProcess(config, tmp_path / "gw.log"), _crate(tmp_path / "crate", crate, mosquitto) as (sim, agent):
            agents.start(agent)
            wait_until(lambda: count(influxdb, database, crate) >= 4, 30, "readings flowing")
            os.kill(sim.process.pid, signal.SIGSTOP)
            time.sleep(STALE_S / 3)  # a short hang: the outage itself, not a wait for an outcome
            os.kill(sim.process.pid, signal.SIGCONT)
            resumed_ms = time.time_ns() // 1_000_000
            before = count(influxdb, database, crate)
            wait_until(lambda: count(influxdb, database, crate) > before + 2, 30, "readings after the short hang")
            os.kill(sim.process.pid, signal.SIGSTOP)
            # the long hang's alarm began after the short one: any alarm of the short hang came before it
            long_hang = [("stale", "active")]
            wait_until(lambda: _changes(listener, crate, resumed_ms) == long_hang, 30, "stale alarm of the long hang")
            os.kill(sim.process.pid, signal.SIGCONT)
            wait_until(lambda: _changes(listener, crate, resumed_ms)[-1:] == [("stale", "cleared")], 30, "cleared")
            wait_until(lambda: len(_stored(influxdb, database, crate)) >= 2, 30, "stale alarm points")
            assert _statuses(listener, crate) == ["online"]  # the agent never went away
    finally:
        agents.stop()
        listener.close()
        _forget(mosquitto, listener, [crate])
    alarms = _alarms(listener, crate, "stale")
    assert [(a["state"], a["started_ts"] >= resumed_ms) for a in alarms] == [("active", True), ("cleared", True)]
    assert (alarms[0]["kind"], alarms[0]["sensor"]) == ("stale", "crate")
    assert alarms[0]["raised_ts"] - alarms[0]["started_ts"] >= STALE_S * 1000
    assert _stored(influxdb, database, crate) == [("stale", "active"), ("stale", "cleared")]


def test_a_killed_agent_is_offline_after_its_time_but_a_quick_restart_raises_nothing(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str, connect: Connect
) -> None:
    """Two crates' agents SIGKILLed: the last will marks both offline; the one restarted at once raises nothing,
    the other raises 'offline' after after_s."""
    gone, back = f"{crate_prefix}-gone", f"{crate_prefix}-back"
    config = _gateway(tmp_path, mosquitto, influxdb, database, {gone: "vanishing_crate", back: "vanishing_crate"})
    topics = [f"coldchain/v1/alarms/{crate}/#" for crate in (gone, back)]
    listener = connect(mosquitto, topics + [f"coldchain/v1/crates/{crate}/status" for crate in (gone, back)])
    agents = Agents()
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(GatewayProcess(config, tmp_path / "gw.log"))
            _, gone_config = stack.enter_context(_crate(tmp_path / gone, gone, mosquitto))
            _, back_config = stack.enter_context(_crate(tmp_path / back, back, mosquitto))
            doomed, restarted = agents.start(gone_config), agents.start(back_config)
            for crate in (gone, back):
                wait_until(lambda c=crate: count(influxdb, database, c) >= 4, 30, f"readings of {crate}")
            # 'back' vanishes first: whenever the gateway's clock says 'gone' was offline too long, so was 'back'
            restarted.kill()
            wait_until(lambda: _statuses(listener, back)[-1:] == ["offline"], 10, "last will of 'back'")
            outage = time.monotonic()
            agents.start(back_config)
            doomed.kill()
            wait_until(lambda: _statuses(listener, gone)[-1:] == ["offline"], 10, "last will of 'gone'")
            wait_until(lambda: _statuses(listener, back)[-1:] == ["online"], 20, "'back' online again")
            assert time.monotonic() - outage < OFFLINE_S, "the restart took longer than the offline time"
            raised = wait_until(lambda: _alarms(listener, gone, "offline"), 30, "offline alarm")
            # written by the tick that raised it, with the points of any alarm of 'back' it raised too
            wait_until(lambda: _stored(influxdb, database, gone), 10, "offline alarm point")
    finally:
        agents.stop()
        listener.close()
        _forget(mosquitto, listener, [gone, back])
    assert (raised[0]["state"], raised[0]["kind"], raised[0]["sensor"]) == ("active", "offline", "crate")
    assert raised[0]["raised_ts"] - raised[0]["started_ts"] >= OFFLINE_S * 1000
    assert _stored(influxdb, database, gone) == [("offline", "active")]
    assert _alarms(listener, back, "offline") == []
    assert _stored(influxdb, database, back) == []
