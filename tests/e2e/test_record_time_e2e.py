"""Readings a crate took while its clock was unset reach the release report as such: the real agent reading the
simulated board on a pty (its wall clock unset for a while), the real broker, gateway and influxd, then
``coldchain report`` (JSON and PDF)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from edge_helpers import InProcessAgent
from gateway_helpers import GatewayProcess, count, gateway_config, wait_until
from sim_helpers import running_sim, sim_agent_config

from cli.report import main
from cli.services import InfluxDB, Mosquitto
from edge.clock import Clock

pytestmark = pytest.mark.integration


class UnsetUntilNtp:
    """The Pi's wall clock: 1970 (as booted without a real-time clock) until ``set``, then the real time."""

    def __init__(self) -> None:
        self.set = False

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000 if self.set else 5_000 + _mono() % 100_000


def _mono() -> int:
    return time.monotonic_ns() // 1_000_000


def _spooled(path: Path) -> int:
    """Rows in the agent's spool, read through a connection of the test's own (the agent's belongs to its loop)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT COUNT(*) FROM telemetry").fetchone()[0])


def _flags(influxdb: InfluxDB, database: str, crate: str) -> dict[int, bool]:
    """seq -> whether its stored reading carries ts_corrected."""
    rows = influxdb.rows(f"SELECT seq, ts_corrected FROM temperature WHERE crate = '{crate}'", database)
    return {int(r["seq"]): r["ts_corrected"] is True for r in rows}  # type: ignore[call-overload]


def test_readings_of_an_unset_clock_are_stored_flagged_and_the_report_lists_their_run(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influxdb: InfluxDB,
    database: str,
    crate_prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The agent holds the readings its unset clock stamped, restamps them once the clock is set; the gateway stores
    them with ts_corrected, and the report says incomplete, listing that run with its start, end and duration."""
    crate = f"{crate_prefix}-clock"
    link = tmp_path / "tty"
    config = sim_agent_config(tmp_path / "crate", crate, mosquitto, str(link), probe_extra="tick_timeout_s = 0.1\n")
    spool, wall = config.parent / "spool.sqlite", UnsetUntilNtp()
    with (
        GatewayProcess(gateway_config(tmp_path, mosquitto, influxdb, database), tmp_path / "gateway.log") as gateway,
        running_sim("--period", "0.1", "--start", "-185", "--duration", "0", "--link", str(link)) as sim,
    ):
        agent = InProcessAgent(config, with_probes=True, clock=Clock(wall, _mono, "boot-A"))
        try:
            wait_until(lambda: _spooled(spool) >= 10, 20, "10 readings held for the clock")
            assert count(influxdb, database, crate) == 0  # held: nothing leaves with a 1970 time
            wall.set = True  # NTP answers
            wait_until(lambda: count(influxdb, database, crate) >= 25, 20, "readings of both clocks stored")
            assert sim.stop() == 0
            wait_until(lambda: _spooled(spool) == 0, 20, "every reading stored and acknowledged")
        finally:
            agent.stop()
        assert gateway.stop() == 0
    flags = _flags(influxdb, database, crate)
    corrected = sorted(seq for seq, flagged in flags.items() if flagged)
    assert corrected == list(range(len(corrected)))  # the first ones, held for the clock
    assert 10 <= len(corrected) < len(flags)

    where = ["--influx-url", influxdb.url, "--database", database]
    assert main([crate, "--format", "json", *where]) == 0
    report = json.loads(capsys.readouterr().out)
    times = {r["seq"]: r["ts_ms"] for r in report["readings"]}
    assert report["verdict"] == "incomplete record: review required"
    (hole,) = report["incomplete"]
    assert (hole["kind"], hole["where"]) == ("time", crate)
    assert (hole["start_ms"], hole["end_ms"]) == (times[0], times[corrected[-1]])
    assert hole["detail"].startswith(f"time corrected: {len(corrected)} message(s) taken while the crate's clock")
    assert hole["duration_s"] == (times[corrected[-1]] - times[0]) / 1000
    assert sorted(r["seq"] for r in report["readings"] if r.get("ts_corrected")) == corrected

    pdf = tmp_path / "report.pdf"
    assert main([crate, "--out", str(pdf), *where]) == 0
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    words = " ".join(text.split())
    assert "Verdict: incomplete record: review required" in words
    assert "the record has 1 hole(s)" in words
    assert "time corrected:" in words  # the table's cells wrap side by side: the rest of the line is interleaved
