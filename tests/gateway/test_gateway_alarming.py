"""The alarm engine inside a real gateway: restarts, staff acks, lid events and a crate's lost seqs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from gateway_helpers import (
    PROFILES,
    ROOT,
    Client,
    Connect,
    GatewayProcess,
    gateway_config,
    telemetry,
    wait_until,
)
from notify_helpers import Receiver, webhook_channel

from cli.services import InfluxDB, Mosquitto

pytestmark = pytest.mark.integration


def _now() -> int:
    return int(time.time() * 1000)


def _audit(influxdb: InfluxDB, database: str, crate: str) -> list[dict[str, Any]]:
    return influxdb.rows(f"SELECT * FROM alarm WHERE crate = '{crate}'", database)


def _states(watcher: Client, topic: str) -> list[dict[str, Any]]:
    return [json.loads(p) for t, p, _ in list(watcher.messages) if t == topic and p]


def test_active_alarm_survives_a_restart_without_being_raised_twice(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str, connect: Connect
) -> None:
    """An alarm active when the gateway restarts is neither raised again nor lost: it clears under the same id."""
    crate = f"{crate_prefix}-r"
    topic = f"coldchain/v1/alarms/{crate}/critical_high/probe1"
    config = gateway_config(tmp_path, mosquitto, influxdb, database, f'[state]\nfile = "{tmp_path / "state.db"}"\n')
    watcher = connect(mosquitto, [f"coldchain/v1/alarms/{crate}/#"])
    start = _now() - 60_000
    gateway = GatewayProcess(config, tmp_path / "gw1.log")
    watcher.send(crate, [1], value=-170.0, ts=start)
    watcher.send(crate, [2], value=-145.0, ts=start + 1000)
    first = wait_until(lambda: _states(watcher, topic), 5, "active alarm")
    assert gateway.stop() == 0
    gateway = GatewayProcess(config, tmp_path / "gw2.log")
    watcher.send(crate, [3], value=-146.0, ts=start + 2000)
    watcher.send(crate, [4], value=-160.0, ts=start + 3000)
    states = wait_until(lambda: [s for s in _states(watcher, topic) if s["state"] == "cleared"], 5, "clear")
    assert gateway.stop() == 0
    assert [s["state"] for s in _states(watcher, topic)] == ["active", "cleared"]
    assert states[0]["id"] == first[0]["id"] == f"{crate}/critical_high/probe1/{start + 1000}"
    changes = [(r["rule"], r["change"]) for r in _audit(influxdb, database, crate) if r["rule"] == "critical_high"]
    assert changes == [("critical_high", "active"), ("critical_high", "cleared")]


def _ack(mosquitto: Mosquitto, crate: str, rule: str, sensor: str, by: str, note: str, status: int = 0) -> str:
    args = [crate, rule, sensor, "--by", by, "--note", note, "--host", mosquitto.host, "--port", str(mosquitto.port)]
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "ack", *args, "--timeout", "5"],
        cwd=ROOT, capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert done.returncode == status, done.stderr
    return done.stderr


def test_staff_ack_marks_the_alarm_acknowledged_and_records_who(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str, connect: Connect
) -> None:
    """``coldchain ack`` turns the retained alarm to acknowledged with by and note, and an alarm point says so."""
    crate = f"{crate_prefix}-a"
    topic = f"coldchain/v1/alarms/{crate}/critical_high/probe1"
    watcher = connect(mosquitto, [f"coldchain/v1/alarms/{crate}/#"])
    gateway = GatewayProcess(gateway_config(tmp_path, mosquitto, influxdb, database), tmp_path / "gw.log")
    watcher.send(crate, [1], value=-145.0, ts=_now())
    wait_until(lambda: _states(watcher, topic), 5, "active alarm")
    _ack(mosquitto, crate, "critical_high", "probe1", "Dana Ops", "re-iced the shipper")
    acked = wait_until(
        lambda: [s for s in _states(watcher, topic) if s["state"] == "acknowledged"], 5, "acknowledged alarm"
    )
    query = f"""SELECT "by", note FROM alarm WHERE crate = '{crate}' AND change = 'acknowledged'"""
    rows = wait_until(lambda: influxdb.rows(query, database), 5, "acknowledged alarm point")
    gateway.stop()
    assert (acked[0]["acknowledged_by"], acked[0]["note"]) == ("Dana Ops", "re-iced the shipper")
    assert (rows[0]["by"], rows[0]["note"]) == ("Dana Ops", "re-iced the shipper")


def test_ack_of_an_alarm_that_is_not_active_is_rejected_and_recorded(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str, connect: Connect
) -> None:
    """An ack naming no active alarm goes to coldchain/v1/rejected and measurement rejected, reason ack_rejected."""
    crate = f"{crate_prefix}-n"
    watcher = connect(mosquitto, ["coldchain/v1/rejected"])
    gateway = GatewayProcess(gateway_config(tmp_path, mosquitto, influxdb, database), tmp_path / "gw.log")
    said = _ack(mosquitto, crate, "critical_high", "probe1", "Dana Ops", "false alarm?", status=1)
    rejected = wait_until(lambda: [r for r in watcher.received() if r.get("crate") == crate], 5, "rejection on MQTT")
    query = f"SELECT detail FROM rejected WHERE crate = '{crate}' AND reason = 'ack_rejected'"
    rows = wait_until(lambda: influxdb.rows(query, database), 5, "rejected point")
    gateway.stop()
    assert rejected[0]["reason"] == "ack_rejected"
    assert "no alarm" in rows[0]["detail"]
    assert f"REFUSED by the gateway: ack_rejected: acknowledgement by 'Dana Ops' refused: no alarm {crate}" in said


def test_lid_left_open_raises_the_lid_alarm_in_event_time(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str, connect: Connect
) -> None:
    """A lid_open event followed by readings 121 s later (cryo: lid_open after 120 s) raises lid_open on the crate."""
    crate = f"{crate_prefix}-l"
    topic = f"coldchain/v1/alarms/{crate}/lid_open/crate"
    watcher = connect(mosquitto, [f"coldchain/v1/alarms/{crate}/#"])
    gateway = GatewayProcess(gateway_config(tmp_path, mosquitto, influxdb, database), tmp_path / "gw.log")
    start = _now() - 60_000
    watcher.send(crate, [1], value=-170.0, ts=start)
    event = {"v": 1, "crate": crate, "ts": start + 500, "event": "lid_open"}
    watcher.publish(f"coldchain/v1/crates/{crate}/events", json.dumps(event).encode())
    watcher.send(crate, [2], value=-170.0, ts=start + 121_500)
    alarm = wait_until(lambda: _states(watcher, topic), 5, "lid alarm")
    gateway.stop()
    assert (alarm[0]["state"], alarm[0]["started_ts"]) == ("active", start + 500)


def test_gap_event_lets_stored_through_move_past_seqs_the_crate_lost(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str, connect: Connect
) -> None:
    """Seqs 3..5 never come; the crate's gap event (spool_full) settles them: stored_through 6, gap point 'lost'."""
    crate = f"{crate_prefix}-g"
    watcher = connect(mosquitto, [f"coldchain/v1/crates/{crate}/ack"])
    gateway = GatewayProcess(gateway_config(tmp_path, mosquitto, influxdb, database), tmp_path / "gw.log")
    watcher.send(crate, [1, 2, 6])
    wait_until(lambda: any(a["stored_through"] == 2 for a in watcher.received()), 5, "stored_through 2")
    event = {"v": 1, "crate": crate, "ts": telemetry_ts(7), "event": "gap", "reason": "spool_full",
             "first_seq": 3, "last_seq": 5, "count": 3}  # fmt: skip
    watcher.publish(f"coldchain/v1/crates/{crate}/events", json.dumps(event).encode())
    wait_until(lambda: any(a["stored_through"] == 6 for a in watcher.received()), 5, "stored_through 6")
    query = f"SELECT first_missing, last_missing, missing, lost, state FROM gap WHERE crate = '{crate}'"
    rows = wait_until(lambda: [r for r in influxdb.rows(query, database) if r["state"] == "lost"], 5, "lost gap")
    gateway.stop()
    assert [(r["first_missing"], r["last_missing"], r["missing"], r["lost"]) for r in rows] == [(3, 5, 0, 3)]


def telemetry_ts(seq: int) -> int:
    """The ts ``telemetry()`` gives ``seq``."""
    return int(json.loads(telemetry("x", seq))["ts"])


def test_webhook_hears_each_change_once_across_a_killed_gateway(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influxdb: InfluxDB,
    database: str,
    crate_prefix: str,
    serve_hooks: Callable[..., ThreadingHTTPServer],
    connect: Connect,
) -> None:
    """A webhook failing at first gets the raise once; after SIGKILL and restart, the clear once, nothing twice."""
    crate = f"{crate_prefix}-w"
    receiver = Receiver(fail_first=1)
    server = serve_hooks(receiver)
    extra = f'[state]\nfile = "{tmp_path / "state.db"}"\n' + webhook_channel(
        tmp_path, server, 'changes = ["active", "cleared"]\n'
    )
    config = gateway_config(tmp_path, mosquitto, influxdb, database, extra)
    client = connect(mosquitto)
    start = _now() - 60_000

    def keys() -> list[str]:
        return [json.loads(body)["key"] for _, body, _ in receiver.accepted()]

    gateway = GatewayProcess(config, tmp_path / "gw1.log")
    client.send(crate, [1], value=-145.0, ts=start)
    wait_until(lambda: any(k.endswith("critical_high/probe1/" + str(start) + "/active") for k in keys()), 10)
    client.send(crate, [2], value=-146.0, ts=start + 1000)
    wait_until(lambda: influxdb.rows(f"SELECT seq FROM temperature WHERE crate = '{crate}' AND seq = 2", database))
    time.sleep(0.3)  # the batch's state is saved before its acknowledgement, just after the write
    gateway.stop(kill=True)
    gateway = GatewayProcess(config, tmp_path / "gw2.log")
    client.send(crate, [3], value=-160.0, ts=start + 2000)
    wait_until(lambda: any(k.endswith("/cleared") for k in keys() if "critical_high" in k), 10, "clear")
    time.sleep(0.3)
    gateway.stop()
    critical = [k for k in keys() if "/critical_high/" in k]
    assert critical == [f"{crate}/critical_high/probe1/{start}/active", f"{crate}/critical_high/probe1/{start}/cleared"]
    assert receiver.requests[0][2] == 503


QUICK_PROFILES = """
[quick]
description = "a crate whose offline alarm comes after one second (tests)"
[[quick.rules]]
name = "critical_high"
kind = "high"
threshold_c = -150.0
severity = "critical"
[[quick.rules]]
name = "offline"
kind = "offline"
severity = "warning"
after_s = 1
"""


def test_offline_crate_raises_its_alarm_from_the_clock_and_clears_when_back(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str, connect: Connect
) -> None:
    """The crate's last will (offline) raises 'offline' after after_s with no message behind it; online clears it."""
    crate = f"{crate_prefix}-o"
    topic = f"coldchain/v1/alarms/{crate}/offline/crate"
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(QUICK_PROFILES)
    config = gateway_config(tmp_path, mosquitto, influxdb, database)
    config.write_text(config.read_text().replace(json.dumps(str(PROFILES)), json.dumps(str(profiles))).replace(
        'default = "cryo"', 'default = "quick"'))  # fmt: skip
    watcher = connect(mosquitto, [f"coldchain/v1/alarms/{crate}/#"])
    gateway = GatewayProcess(config, tmp_path / "gw.log")
    status = f"coldchain/v1/crates/{crate}/status"
    watcher.publish(status, json.dumps({"v": 1, "crate": crate, "state": "offline", "ts": _now()}).encode())
    active = wait_until(lambda: _states(watcher, topic), 5, "offline alarm")
    query = f"SELECT change FROM alarm WHERE crate = '{crate}' AND rule = 'offline'"
    wait_until(lambda: influxdb.rows(query, database), 5, "offline alarm point (written by the tick)")
    watcher.publish(status, json.dumps({"v": 1, "crate": crate, "state": "online", "ts": _now()}).encode())
    wait_until(lambda: [s for s in _states(watcher, topic) if s["state"] == "cleared"], 5, "cleared")
    wait_until(lambda: len(influxdb.rows(query, database)) == 2, 5, "cleared point")
    gateway.stop()
    assert (active[0]["state"], active[0]["kind"], active[0]["severity"]) == ("active", "offline", "warning")
