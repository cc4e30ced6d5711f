"""``coldchain report`` from real points in a real influxd: PDF (read back with pdftotext), JSON, CSV."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import alarm_line, fault_line, gap_line, recording_v2_standin, temperature_line, write_lines

from cli.report import main
from cli.services import InfluxDB
from cli.window import iso
from coldchain.alarms.lifecycle import Alarm, AlarmChange
from gateway.notify.audit import audit_point
from gateway.points import fault_line as gateway_fault_line
from gateway.points import gap_point, shipment_point, temperature_series
from gateway.sequence import Gap

pytestmark = pytest.mark.integration

STEP_MS = 10_000
COUNT = 120  # 20 minutes at one reading per 10 s
BASE_MS = (int(time.time() * 1000) - 3 * 3_600_000) // 60_000 * 60_000


def _excursion_crate(influxdb: InfluxDB, database: str, crate: str) -> None:
    """Two probes; probe1 above -150 °C for 50 s, its alarm raised, acked by alice, cleared; 3 messages lost."""
    lines = []
    for i in range(COUNT):
        ts = BASE_MS + i * STEP_MS
        lines.append(temperature_line(crate, "probe1", ts, -147.5 if 50 <= i < 55 else -165.25, i))
        lines.append(temperature_line(crate, "probe2", ts, -171.0, i))
    alarm_id = f"{crate}/critical_high/probe1/{BASE_MS + 50 * STEP_MS}"
    for state, i, extra in (
        ("active", 50, {}),
        ("acknowledged", 52, {"by": "alice", "note": "re-iced"}),
        ("cleared", 55, {}),
    ):
        value = -147.5 if state != "cleared" else -165.25
        lines.append(
            alarm_line(
                crate,
                "critical_high",
                "probe1",
                "critical",
                state,
                BASE_MS + i * STEP_MS,
                value,
                -150.0,
                i,
                alarm_id,
                **extra,
            )
        )
    lines.append(gap_line(crate, BASE_MS + 80 * STEP_MS, 80, 82))
    lines.append(fault_line(crate, "probe2", BASE_MS + COUNT * STEP_MS, "OPEN", COUNT))
    write_lines(influxdb, database, lines)


def _args(influxdb: InfluxDB, database: str) -> list[str]:
    return ["--influx-url", influxdb.url, "--database", database]


def _independent_sha256(influxdb: InfluxDB, database: str, subject: str, start_ms: int, end_ms: int, crate: str) -> str:
    """The data hash recomputed straight from InfluxDB, following docs/queries.md (not the product's code)."""

    def c(value: object) -> object:
        return None if value is None else f"{value:.4f}"

    lines = [["coldchain-report-data", 1, subject, start_ms, end_ms]]
    q = f"SELECT value_c, fault, seq FROM temperature WHERE crate = '{crate}' GROUP BY sensor"
    temps = sorted(influxdb.rows(q, database), key=lambda r: (r["sensor"], r["time"]))
    for r in temps:
        if r["value_c"] is not None:
            lines.append(["T", crate, r["sensor"], r["time"], c(r["value_c"]), r["seq"]])
    for r in temps:
        if r["value_c"] is None:
            lines.append(["F", crate, r["sensor"], r["time"], r["fault"], r["seq"]])
    alarms = influxdb.rows(f"SELECT * FROM alarm WHERE crate = '{crate}'", database)
    for r in sorted(alarms, key=lambda r: (r["time"], r["rule"], r["sensor"], r["state"])):
        lines.append(
            ["A", r["time"], crate, r["rule"], r["sensor"], r["severity"], r["state"], c(r["value_c"]),
             c(r["threshold_c"]), r["seq"], r["id"], r.get("by"), r.get("note")]
        )  # fmt: skip
    for r in influxdb.rows(f"SELECT * FROM gap WHERE crate = '{crate}'", database):
        lines.append(["G", r["time"], crate, r["first_missing"], r["last_missing"], r["state"]])
    text = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
    return hashlib.sha256(text.encode()).hexdigest()


def test_pdf_report_has_verdict_statistics_alarms_gaps_and_data_hash(
    influxdb: InfluxDB, database: str, crate_prefix: str, tmp_path: Path
) -> None:
    """The PDF, read back with pdftotext, states the excursion verdict, every transition with who acked it,
    the gap, the statistics, and the SHA-256 recomputed independently from InfluxDB."""
    crate = f"{crate_prefix}-R"
    _excursion_crate(influxdb, database, crate)
    out = tmp_path / "report.pdf"
    argv = [crate, "--out", str(out), "--product", "iPSC cardiomyocytes lot 7", "--origin", "Leiden"]
    argv += ["--destination", "Boston", *_args(influxdb, database)]
    assert main(argv) == 0
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout
    words = " ".join(text.split())
    assert "Verdict: excursion: review required" in words
    assert "probe1: critical_high (high -150 °C) breached for 50s, peak -147.50 °C" in words
    assert "iPSC cardiomyocytes lot 7" in words
    assert "Leiden -> Boston" in words
    # probe1: 120 readings, min -165.25, max -147.50, 50 s outside the critical limit
    assert "probe1 120 -165.25 -147.50" in words
    assert "50s" in words
    assert "acknowledged -147.50 alice re-iced" in words
    assert "80 .. 82 open 3" in words
    assert "the record has 2 hole(s)" in words
    assert "fault probe2" in words
    assert "1 fault reading(s) (OPEN):" in words
    assert "probe2 OPEN 1" in words
    end_ms = BASE_MS + COUNT * STEP_MS + 1  # the last record is the fault
    expected = _independent_sha256(influxdb, database, crate, BASE_MS, end_ms, crate)
    assert f"SHA-256 of the data: {expected}" in words
    page = tmp_path / "page"
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(out), str(page)], check=True)
    assert (tmp_path / "page-1.png").stat().st_size > 20_000  # a rendered page with a chart, not a blank one


def test_cold_crate_is_within_profile_in_json(
    influxdb: InfluxDB, database: str, crate_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crate that stayed cold gets 'within profile', its MKT, and the readings its hash covers."""
    crate = f"{crate_prefix}-W"
    write_lines(
        influxdb, database, [temperature_line(crate, "probe1", BASE_MS + i * STEP_MS, -170.0, i) for i in range(30)]
    )
    assert main([crate, "--format", "json", *_args(influxdb, database)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "within profile"
    assert report["reasons"] == []
    assert report["sensors"][0]["mkt_c"] == pytest.approx(-170.0)
    assert len(report["readings"]) == 30
    assert report["sha256"] == _independent_sha256(
        influxdb, database, crate, BASE_MS, BASE_MS + 29 * STEP_MS + 1, crate
    )


def test_csv_has_the_records_verdict_then_each_probes_own(
    influxdb: InfluxDB, database: str, crate_prefix: str, tmp_path: Path
) -> None:
    """--format csv --out: a record row with the record's verdict and reasons, then one row per probe with
    its statistics and its own verdict: the cold probe2 is incomplete (its OPEN fault, its crate's gap),
    not 'excursion' as if probe1's excursion were its own."""
    crate = f"{crate_prefix}-V"
    _excursion_crate(influxdb, database, crate)
    out = tmp_path / "report.csv"
    assert main([crate, "--format", "csv", "--out", str(out), *_args(influxdb, database)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["scope"], r["crate_sensor"], r["readings"], r["max_c"], r["critical_excursions"]) for r in rows] == [
        ("record", "", "240", "-147.50", "1"),
        ("probe", "probe1", "120", "-147.50", "1"),
        ("probe", "probe2", "120", "-171.00", "0"),
    ]
    assert [r["verdict"] for r in rows] == [
        "excursion: review required",
        "excursion: review required",
        "incomplete record: review required",
    ]
    assert "seq 80..82 not all stored: 3 still awaited" in rows[0]["reasons"]
    assert "probe2: 1 fault reading(s) (OPEN)" in rows[2]["reasons"]
    assert "critical_high" not in rows[2]["reasons"]
    assert len({r["sha256"] for r in rows}) == 1
    assert len(rows[0]["sha256"]) == 64


def test_shipment_id_selects_its_crates_and_only_its_readings(
    influxdb: InfluxDB, database: str, crate_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shipment id finds the crates whose readings carry it, and leaves out that crate's other readings."""
    shipment = f"S-{crate_prefix}"
    a, b = f"{crate_prefix}-A", f"{crate_prefix}-B"
    lines = []
    for i in range(10):
        ts = BASE_MS + i * STEP_MS
        for crate in (a, b):
            lines.append(
                temperature_line(crate, "probe1", ts, -168.0, i).replace(",sensor=", f",shipment={shipment},sensor=")
            )
        lines.append(temperature_line(a, "probe1", ts - 3_600_000, -20.0, 1000 + i))  # the crate's previous trip
    write_lines(influxdb, database, lines)
    assert main([shipment, "--format", "json", *_args(influxdb, database)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "shipment"
    assert report["crates"] == [a, b]
    assert [(s["sensor"], s["readings"], s["max_c"]) for s in report["sensors"]] == [
        (f"{a}/probe1", 10, -168.0),
        (f"{b}/probe1", 10, -168.0),
    ]
    assert report["verdict"] == "within profile"


def test_spent_budget_requires_review_although_each_breach_was_tolerated(
    influxdb: InfluxDB, database: str, crate_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refrigerated: seven 10-minute warm spells, each shorter than the 15-minute delay, spend the 1 h budget."""
    crate = f"{crate_prefix}-F"
    lines = []
    for i in range(140):  # one reading a minute; warm during the first 10 of every 20 minutes
        value = 9.0 if i % 20 < 10 else 5.0
        lines.append(temperature_line(crate, "probe1", BASE_MS + i * 60_000, value, i, profile="refrigerated"))
    write_lines(influxdb, database, lines)
    assert main([crate, "--format", "json", *_args(influxdb, database)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {b["rule"]: b["used_s"] for b in report["budgets"]} == {"budget_half_used": 4200.0, "budget_spent": 4200.0}
    assert report["verdict"] == "excursion: review required"
    assert report["reasons"] == ["budget_spent: 1h10m out of range exceeds the budget of 1h00m"]
    critical_high = next(r for r in report["sensors"][0]["rules"] if r["rule"] == "critical_high")
    assert critical_high["excursions"] == []
    assert critical_high["beyond_s"] == 4200.0


def test_unknown_subject_fails_with_where_it_looked(
    influxdb: InfluxDB, database: str, crate_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Neither a shipment nor a crate with readings: the error says so and names the database."""
    write_lines(influxdb, database, [temperature_line(f"{crate_prefix}-X", "probe1", BASE_MS, -170.0, 1)])
    assert main([f"{crate_prefix}-none", "--format", "json", *_args(influxdb, database)]) == 1
    err = capsys.readouterr().err
    assert f"no readings of crate {crate_prefix}-none" in err
    assert database in err


def test_hash_recipe_in_the_docs_recomputes_the_report_hash(
    influxdb: InfluxDB, database: str, crate_prefix: str, tmp_path: Path
) -> None:
    """The Python recipe of docs/queries.md, run on the JSON export, prints the report's SHA-256."""
    crate = f"{crate_prefix}-H"
    _excursion_crate(influxdb, database, crate)
    assert main([crate, "--format", "json", "--out", str(tmp_path / "data.json"), *_args(influxdb, database)]) == 0
    docs = (Path(__file__).resolve().parent.parent / "docs" / "queries.md").read_text()
    recipe = docs.split("```python\n")[1].split("```")[0]
    printed = subprocess.run([sys.executable, "-c", recipe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert printed.stdout.strip() == json.loads((tmp_path / "data.json").read_text())["sha256"]


def _annotated(columns: list[tuple[str, str]], rows: list[list[str]]) -> str:
    """An annotated-CSV answer as a v2 server sends it."""
    head = [
        "#datatype,string,long," + ",".join(kind for _, kind in columns),
        "#group,false,false," + ",".join("false" for _ in columns),
        "#default,_result,," + ",".join("" for _ in columns),
        ",result,table," + ",".join(name for name, _ in columns),
    ]
    return "\n".join(head + [",,0," + ",".join(row) for row in rows]) + "\n\n"


def test_v2_report_through_recording_standin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Against the recording v2 stand-in (no v2 server on Debian), the report's Flux queries
    (shipment, extent, readings, alarms, gaps, releases) are sent to the bucket and their answers judged."""
    t = [iso(BASE_MS + i * STEP_MS) for i in range(4)]
    time_col = [("_time", "dateTime:RFC3339")]
    answers = [
        "",  # no readings carry shipment C-V2: it is a crate
        _annotated(time_col, [[t[0]]]),
        _annotated(time_col, [[t[3]]]),
        _annotated(
            [*time_col, ("crate", "string"), ("profile", "string"), ("sensor", "string"), ("value_c", "double"),
             ("seq", "long")],
            [[t[i], "C-V2", "cryo", "probe1", v, str(i)] for i, v in enumerate(["-165", "-148", "-165", "-165"])],
        ),
        _annotated(
            [*time_col, ("crate", "string"), ("rule", "string"), ("sensor", "string"), ("severity", "string"),
             ("state", "string"), ("value_c", "double"), ("threshold_c", "double"), ("seq", "long"), ("id", "string"),
             ("by", "string"), ("note", "string")],
            [[t[1], "C-V2", "critical_high", "probe1", "critical", "active", "-148.0", "-150.0", "1", "C-V2/x", "", ""],
             [t[2], "C-V2", "critical_high", "probe1", "critical", "acknowledged", "-148.0", "-150.0", "1", "C-V2/x",
              "bob", "moved to a fresh shipper"]],
        ),
        _annotated(
            [*time_col, ("crate", "string"), ("first_missing", "long"), ("last_missing", "long"), ("missing", "long"),
             ("state", "string")],
            [[t[2], "C-V2", "7", "9", "0", "closed"]],
        ),
    ]  # fmt: skip
    token = tmp_path / "token"
    token.write_text("tok\n")
    with recording_v2_standin(answers) as standin:
        argv = ["C-V2", "--format", "json", "--api", "v2", "--influx-url", standin.url, "--org", "qa"]
        assert main([*argv, "--bucket", "cold", "--token-file", str(token)]) == 0
    fluxes = [json.loads(r["body"])["query"] for r in standin.requests]
    assert len(fluxes) == 7
    assert all('from(bucket: "cold")' in flux for flux in fluxes)
    assert 'r.shipment == "C-V2"' in fluxes[0]
    assert 'r._measurement == "alarm"' in fluxes[4]
    assert 'r._measurement == "gap"' in fluxes[5]
    assert 'r._measurement == "release" and r.crate == "C-V2"' in fluxes[6]
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "excursion: review required"
    assert [(a["state"], a["by"], a["alarm_id"]) for a in report["alarms"]] == [
        ("active", None, "C-V2/x"),
        ("acknowledged", "bob", "C-V2/x"),
    ]
    assert report["gaps"][0]["state"] == "closed"
    assert report["gaps"][0]["missing"] == 0


def test_readings_without_a_profile_are_not_passed_as_within_profile(
    influxdb: InfluxDB, database: str, crate_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Readings stored without a profile (and no --profile) call for review: nothing judged them."""
    crate = f"{crate_prefix}-N"
    lines = [
        f"temperature,crate={crate},sensor=probe1 value_c=-170.0,seq={i}i {BASE_MS + i * STEP_MS}" for i in range(5)
    ]
    write_lines(influxdb, database, lines)
    assert main([crate, "--format", "json", *_args(influxdb, database)]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["verdict"] == "excursion: review required"
    assert report["reasons"][0].startswith("no product profile")
    assert "no limits applied" in captured.err


def test_reads_the_points_exactly_as_the_gateway_writes_them(
    influxdb: InfluxDB, database: str, crate_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Points built by the gateway's own builders are read back: readings, a fault, alarm ids, gap state."""
    crate = f"{crate_prefix}-G"
    series = temperature_series(crate, "cryo", "probe1")
    lines = [f"{series} value_c=-170.5,seq={i}i {BASE_MS + i * STEP_MS}" for i in range(6)]
    lines.append(gateway_fault_line(series, "SHORT", 6, BASE_MS + 6 * STEP_MS))
    alarm = Alarm(
        crate, "critical_high", "threshold", "critical", "probe1", "active", BASE_MS, BASE_MS, BASE_MS,
        profile="cryo", seq=0, value_c=-149.0, threshold_c=-150.0,
    )  # fmt: skip
    lines.append(audit_point(AlarmChange("active", alarm, BASE_MS)))
    lines.append(gap_point(crate, Gap(first=2, last=3, ts=BASE_MS + 4 * STEP_MS, missing=[[2, 3]])))
    write_lines(influxdb, database, lines)
    assert main([crate, "--format", "json", *_args(influxdb, database)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["value_c"] for r in report["readings"]] == [-170.5] * 6
    assert [(f["fault"], f["seq"]) for f in report["faults"]] == [("SHORT", 6)]
    assert [(a["state"], a["alarm_id"], a["value_c"]) for a in report["alarms"]] == [("active", alarm.alarm_id, -149.0)]
    assert [(g["first_seq"], g["last_seq"], g["state"], g["missing"]) for g in report["gaps"]] == [(2, 3, "open", 2)]


def test_shipment_record_stored_by_the_gateway_fills_the_report_options_override(
    influxdb: InfluxDB, database: str, crate_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shipment's newest ``shipment`` point (built by gateway.points) gives origin, destination and product;
    a record left without product shows none; an option overrides its field only."""
    shipment, crate = f"S-{crate_prefix}-R", f"{crate_prefix}-R"
    series = temperature_series(crate, "cryo", "probe1", shipment)
    lines = [f"{series} value_c=-170.5,seq={i}i {BASE_MS + i * STEP_MS}" for i in range(3)]
    lines.append(shipment_point(shipment, crate, {"origin": "Kobe", "product": "old"}, BASE_MS - 60_000))
    lines.append(shipment_point(shipment, crate, {"origin": "Kyoto", "destination": "Leiden"}, BASE_MS))
    write_lines(influxdb, database, lines)
    args = [shipment, "--format", "json", *_args(influxdb, database)]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["origin"], report["destination"], report["product"]) == ("Kyoto", "Leiden", None)
    assert main([*args, "--origin", "Kyoto CiRA", "--product", "iPSC neurons"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["origin"], report["destination"], report["product"]) == ("Kyoto CiRA", "Leiden", "iPSC neurons")


def test_v2_shipment_report_reads_the_record_through_recording_standin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Against the recording v2 stand-in, a shipment's report asks for its newest ``shipment`` point (Flux,
    pivoted) and shows its origin and destination; given all three options, it does not ask."""
    t = [iso(BASE_MS + i * STEP_MS) for i in range(2)]
    time_col = [("_time", "dateTime:RFC3339")]
    crates = _annotated([("_value", "string")], [["C-V2"]])
    record = _annotated(
        [*time_col, ("crate", "string"), ("shipment", "string"), ("destination", "string"), ("origin", "string")],
        [[t[1], "C-V2", "SHP-V2", "Leiden", "Kyoto"]],
    )
    readings = _annotated(
        [*time_col, ("crate", "string"), ("profile", "string"), ("sensor", "string"), ("value_c", "double"),
         ("seq", "long")],
        [[t[i], "C-V2", "cryo", "probe1", "-170", str(i)] for i in range(2)],
    )  # fmt: skip
    answers = [crates, record, _annotated(time_col, [[t[0]]]), _annotated(time_col, [[t[1]]]), readings, "", ""]
    token = tmp_path / "token"
    token.write_text("tok\n")
    argv = ["SHP-V2", "--format", "json", "--api", "v2", "--org", "qa", "--bucket", "cold", "--token-file", str(token)]
    with recording_v2_standin(answers) as standin:
        assert main([*argv, "--influx-url", standin.url]) == 0
    fluxes = [json.loads(r["body"])["query"] for r in standin.requests]
    assert 'r._measurement == "shipment" and r.shipment == "SHP-V2"' in fluxes[1]
    assert "desc: true" in fluxes[1]
    report = json.loads(capsys.readouterr().out)
    assert (report["origin"], report["destination"], report["product"]) == ("Kyoto", "Leiden", None)
    options = ["--origin", "A", "--destination", "B", "--product", "P"]
    with recording_v2_standin([crates, *answers[2:]]) as standin:
        assert main([*argv, *options, "--influx-url", standin.url]) == 0
    assert not any('r._measurement == "shipment"' in json.loads(r["body"])["query"] for r in standin.requests)
    report = json.loads(capsys.readouterr().out)
    assert (report["origin"], report["destination"], report["product"]) == ("A", "B", "P")
