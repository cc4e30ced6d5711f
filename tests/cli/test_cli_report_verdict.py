"""The report's verdict over a record the real gateway wrote (telemetry published to a real mosquitto,
stored in the real influxd): holes make it incomplete, an excursion outranks that, a clean record stays clean."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from gateway_helpers import Client, GatewayProcess, gaps_stored, gateway_config, seqs_stored, telemetry
from wait_helpers import wait_until

from cli.report import main
from cli.services import InfluxDB, Mosquitto
from coldchain.topics import staff_ack_topic
from coldchain.wire import StaffAck, encode

pytestmark = pytest.mark.integration

MINUTE = 60_000
BASE_MS = 1_764_086_400_000  # 2025-11-25T16:00Z: an old record, so no wall-clock rule (stale, offline) interferes
_ids = itertools.count()


@dataclass(frozen=True)
class Stored:
    """The database the gateway wrote, and the crates of each scenario."""

    influxdb: InfluxDB
    database: str
    crates: dict[str, str]
    shipment: str

    def report(self, subject: str, form: str, capsys: pytest.CaptureFixture[str]) -> dict:
        """``coldchain report SUBJECT --format json`` (or csv rows) against the stored record."""
        argv = [subject, "--format", form, "--influx-url", self.influxdb.url, "--database", self.database]
        assert main(argv) == 0
        out = capsys.readouterr().out
        return json.loads(out) if form == "json" else {"rows": list(csv.DictReader(io.StringIO(out)))}


def _scenarios(prefix: str) -> dict[str, list[tuple[int, int, float]]]:
    """(seq, ts, value) each crate publishes."""
    half = 30_000
    return {
        # one reading a minute for an hour; seqs 10..44 (35 minutes) never arrive: an open gap
        "gap": [(s, BASE_MS + s * MINUTE, -170.0) for s in range(60) if not 10 <= s <= 44],
        # every 30 s, but 3 min 41 s without any reading after seq 14 (the stale limit of cryo is 2 min)
        "stale": [(s, BASE_MS + s * half + (221_000 - half if s >= 15 else 0), -170.0) for s in range(30)],
        # above -150 °C for 2.5 minutes, and seqs 20..22 lost: the excursion decides
        "hot": [(s, BASE_MS + s * half, -147.0 if 10 <= s < 15 else -170.0) for s in range(30) if not 20 <= s <= 22],
        # every 30 s at -170 °C: nothing wrong
        "clean": [(s, BASE_MS + s * half, -170.0) for s in range(30)],
        # warm at the end: the critical alarm stays active, so the gateway escalates it
        "escalated": [(s, BASE_MS + s * half, -147.0 if s >= 7 else -170.0) for s in range(10)],
    }


def _escalate_and_acknowledge(broker: Mosquitto, influxdb: InfluxDB, database: str, crate: str) -> None:
    """Wait for the gateway to escalate the crate's critical alarm, then acknowledge it as a staff member would."""
    points = f"SELECT * FROM alarm WHERE crate = '{crate}' AND rule = 'critical_high'"
    wait_until(lambda: any(r.get("escalated_ts") for r in influxdb.rows(points, database)), 15, "the escalation")
    client = Client(broker)
    ack = StaffAck(crate, "critical_high", "probe1", "qa.bob", "moved to a fresh shipper", int(time.time() * 1000))
    client.publish(staff_ack_topic(crate, "critical_high", "probe1"), encode(ack))
    client.close()
    wait_until(
        lambda: any(r["state"] == "acknowledged" for r in influxdb.rows(points, database)), 10, "the acknowledgement"
    )


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory, influxdb: InfluxDB) -> Stored:
    """One gateway run stores every scenario (a broker of its own: the excursion's retained alarms stay there)."""
    tmp = tmp_path_factory.mktemp("verdicts")
    prefix = f"Q{os.getpid()}-{next(_ids)}"
    crates = {name: f"{prefix}-{name}" for name in ("gap", "stale", "hot", "clean", "escalated")}
    shipment = f"SHP-{prefix}"
    database = f"verdicts{os.getpid()}_{next(_ids)}"
    extra = (
        f'[shipments."{shipment}"]\ncrates = ["{crates["clean"]}"]\norigin = "Kyoto CiRA"\n'
        'destination = "Leiden LUMC"\nproduct = "iPSC cardiomyocytes"\n'
        "[alarms]\nhold_s = 0\nescalate_after_s = { critical = 1 }\n"
    )
    broker = Mosquitto(tmp / "mosquitto").start()
    try:
        config = gateway_config(tmp, broker, influxdb, database, extra)
        with GatewayProcess(config, tmp / "gw.log"):
            client = Client(broker)
            for name, messages in _scenarios(prefix).items():
                topic = f"coldchain/v1/crates/{crates[name]}/telemetry"
                for seq, ts, value in messages:
                    client.publish(topic, telemetry(crates[name], seq, value, ts=ts))
            client.close()
            expected = {crates[name]: len(messages) for name, messages in _scenarios(prefix).items()}
            for crate, count in expected.items():
                wait_until(
                    lambda c=crate, n=count: len(seqs_stored(influxdb, database, c)) == n, 20, f"readings of {crate}"
                )
            for name in ("gap", "hot"):
                wait_until(lambda c=crates[name]: gaps_stored(influxdb, database, c), 10, f"the gap of {name}")
            _escalate_and_acknowledge(broker, influxdb, database, crates["escalated"])
    finally:
        broker.stop()
    return Stored(influxdb, database, crates, shipment)


def test_open_gap_of_35_of_60_minutes_makes_the_record_incomplete(
    stored: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crate missing 35 of 60 minutes (an open gap) is 'incomplete record', the hole listed with its times."""
    report = stored.report(stored.crates["gap"], "json", capsys)
    assert report["verdict"] == "incomplete record: review required"
    (hole,) = report["incomplete"]
    assert (hole["kind"], hole["where"]) == ("gap", stored.crates["gap"])
    assert (hole["start_ms"], hole["end_ms"], hole["duration_s"]) == (BASE_MS + 9 * MINUTE, BASE_MS + 45 * MINUTE, 2160)
    assert "seq 10..44 not all stored: 35 still awaited" in hole["detail"]
    assert report["reasons"] == [
        f"{stored.crates['gap']}: {hole['detail']}, 2025-11-25 16:09:00Z to 2025-11-25 16:45:00Z (36m00s)"
    ]


def test_stretch_without_readings_beyond_the_stale_limit_makes_the_record_incomplete(
    stored: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    """3 min 41 s without a reading (cryo's stale limit: 2 min), no seq missing: incomplete, the stretch listed."""
    report = stored.report(stored.crates["stale"], "json", capsys)
    assert report["verdict"] == "incomplete record: review required"
    assert [(h["kind"], h["start_ms"], h["duration_s"], h["detail"]) for h in report["incomplete"]] == [
        ("stale", BASE_MS + 14 * 30_000, 221.0, "no reading for 3m41s (stale limit 2m00s)")
    ]


def test_excursion_outranks_an_incomplete_record(stored: Stored, capsys: pytest.CaptureFixture[str]) -> None:
    """A critical excursion with a gap is 'excursion: review required'; the gap is still listed among the reasons."""
    report = stored.report(stored.crates["hot"], "json", capsys)
    assert report["verdict"] == "excursion: review required"
    assert report["reasons"][0].startswith("probe1: critical_high (high -150 °C) breached for 2m30s")
    assert [h["kind"] for h in report["incomplete"]] == ["gap"]
    assert any("seq 20..22 not all stored: 3 still awaited" in r for r in report["reasons"])


def test_clean_record_stays_within_profile_and_names_its_shipment(
    stored: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crate with nothing wrong is 'within profile'; asked for by crate id, the report finds its shipment record."""
    report = stored.report(stored.crates["clean"], "json", capsys)
    assert (report["verdict"], report["reasons"], report["incomplete"]) == ("within profile", [], [])
    assert (report["kind"], report["shipment"]) == ("crate", stored.shipment)
    assert (report["product"], report["origin"], report["destination"]) == (
        "iPSC cardiomyocytes",
        "Kyoto CiRA",
        "Leiden LUMC",
    )


def test_csv_carries_the_same_verdict_and_reasons_as_the_json(
    stored: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CSV's record row has the JSON's verdict and reasons, for an incomplete and a clean record."""
    for name in ("stale", "clean"):
        report = stored.report(stored.crates[name], "json", capsys)
        record, probe = stored.report(stored.crates[name], "csv", capsys)["rows"]
        assert (record["scope"], record["verdict"], record["reasons"]) == (
            "record",
            report["verdict"],
            "; ".join(report["reasons"]),
        )
        assert (probe["scope"], probe["verdict"]) == ("probe", report["sensors"][0]["verdict"])
        assert record["sha256"] == report["sha256"]


def test_pdf_lists_the_hole_on_page_one(stored: Stored, tmp_path: Path) -> None:
    """Page 1 of the PDF (pdftotext) carries the incomplete verdict and the hole's start, end and duration."""
    out = tmp_path / "gap.pdf"
    argv = [stored.crates["gap"], "--out", str(out), "--influx-url", stored.influxdb.url, "--database", stored.database]
    assert main(argv) == 0
    page = subprocess.run(
        ["pdftotext", "-layout", "-f", "1", "-l", "1", str(out), "-"], capture_output=True, text=True, check=True
    ).stdout
    words = " ".join(page.split())
    assert "Verdict: incomplete record: review required" in words
    assert "2025-11-25 16:09:00Z" in words
    assert "2025-11-25 16:45:00Z" in words
    assert "36m00s" in words


def test_an_escalation_is_no_second_active_row_and_the_acknowledger_is_named(
    stored: Stored, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The gateway's escalation shows on the raising row (not as a second 'active' row), the acknowledgement names
    its person, in the JSON and in the PDF's alarm table."""
    crate = stored.crates["escalated"]
    report = stored.report(crate, "json", capsys)
    critical = [(a["transition"], a["escalated_ts"] is not None, a["by"]) for a in report["alarms"]
                if a["rule"] == "critical_high"]  # fmt: skip
    assert critical == [("active", True, None), ("acknowledged", False, "qa.bob")]
    out = tmp_path / "escalated.pdf"
    assert main([crate, "--out", str(out), "--influx-url", stored.influxdb.url, "--database", stored.database]) == 0
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout
    words = " ".join(text.split())
    assert "critical active" in words
    assert "critical acknowledged -147.00 qa.bob" in words
    assert "escalated 2026" not in words.split("critical acknowledged")[1]  # only the raising row says so
    assert words.count("escalated 20") == 1
