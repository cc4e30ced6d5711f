"""``coldchain report`` on readings whose time the crate corrected: listed as ``time`` holes, the record incomplete,
the flags in the JSON and in the data hash (a record without them hashes as before). Real influxd; the v2 path
through the recording stand-in."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import recording_v2_standin, write_lines

from cli.report import main
from cli.services import InfluxDB
from cli.window import iso
from gateway.points import fault_line, temperature_series, time_flagged

pytestmark = pytest.mark.integration

STEP_MS = 10_000
BASE_MS = (int(time.time() * 1000) - 3 * 3_600_000) // 60_000 * 60_000
TIME_FLAGS = ("ts_corrected", "ts_uncertain")
FLAGS = {3: "ts_corrected", 4: "ts_corrected", 5: "ts_corrected", 8: "ts_uncertain"}  # seq -> flag


def _record(influxdb: InfluxDB, database: str, crate: str, flags: dict[int, str]) -> None:
    """Ten readings of probe1 and a fault of probe2 at seq 4, stored as the gateway writes them (``flags`` set)."""
    series, faulty = temperature_series(crate, "cryo", "probe1"), temperature_series(crate, "cryo", "probe2")
    lines = []
    for seq in range(10):
        ts = BASE_MS + seq * STEP_MS
        batch = [f"{series} value_c=-170.0,seq={seq}i {ts}"]
        batch.append(fault_line(faulty, "OPEN", seq, ts) if seq == 4 else f"{faulty} value_c=-171.0,seq={seq}i {ts}")
        lines += [time_flagged(line, flags[seq]) for line in batch] if seq in flags else batch
    write_lines(influxdb, database, lines)


def _report(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main([*argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_corrected_times_make_the_record_incomplete_and_are_listed(
    influxdb: InfluxDB, database: str, crate_prefix: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Runs of corrected and uncertain times are time holes with start, end and duration; the JSON's readings and
    faults carry the flags, and the docs' hash recipe recomputes the report's hash from them."""
    crate = f"{crate_prefix}-T"
    _record(influxdb, database, crate, FLAGS)
    report = _report([crate, "--influx-url", influxdb.url, "--database", database], capsys)
    assert report["verdict"] == "incomplete record: review required"
    got = [(h["kind"], h["where"], h["start_ms"], h["end_ms"], h["detail"].split(":")[0]) for h in report["incomplete"]]
    fault = ("fault", "probe2", BASE_MS + 4 * STEP_MS, BASE_MS + 5 * STEP_MS, "1 fault reading(s) (OPEN)")
    assert sorted(got) == sorted(
        [
            ("time", crate, BASE_MS + 3 * STEP_MS, BASE_MS + 5 * STEP_MS, "time corrected"),
            ("time", crate, BASE_MS + 8 * STEP_MS, BASE_MS + 8 * STEP_MS, "time uncertain"),
            fault,
        ]
    )
    assert any(r.startswith(f"{crate}: time corrected: 3 message(s)") and "(20s)" in r for r in report["reasons"])
    flagged = {(r["sensor"], r["seq"]): k for r in report["readings"] for k in r if k in TIME_FLAGS}
    assert flagged == {(p, s): "ts_corrected" for p in ("probe1", "probe2") for s in (3, 5)} | {
        ("probe1", 4): "ts_corrected",
        ("probe1", 8): "ts_uncertain",
        ("probe2", 8): "ts_uncertain",
    }
    assert [(f["seq"], f["ts_corrected"]) for f in report["faults"]] == [(4, True)]
    (tmp_path / "data.json").write_text(json.dumps(report))
    docs = (Path(__file__).resolve().parents[2] / "docs" / "queries.md").read_text()
    recipe = docs.split("```python\n")[1].split("```")[0]
    printed = subprocess.run([sys.executable, "-c", recipe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert printed.stdout.strip() == report["sha256"]


def test_a_flag_added_later_changes_the_data_hash(
    influxdb: InfluxDB, database: str, crate_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record without flags has no time hole; a flag merged into one of its points later changes its hash."""
    crate = f"{crate_prefix}-P"
    _record(influxdb, database, crate, {})
    window = ["--from", iso(BASE_MS), "--to", iso(BASE_MS + 10 * STEP_MS)]
    where = [crate, "--influx-url", influxdb.url, "--database", database, *window]
    clean = _report(where, capsys)
    assert [h["kind"] for h in clean["incomplete"]] == ["fault"]
    assert not any(k in TIME_FLAGS for r in clean["readings"] for k in r)
    series = temperature_series(crate, "cryo", "probe1")
    write_lines(influxdb, database, [f"{series} ts_corrected=true {BASE_MS + 2 * STEP_MS}"])  # merged into the point
    flagged = _report(where, capsys)
    assert [h["kind"] for h in flagged["incomplete"]] == ["time", "fault"]  # in time order
    assert flagged["sha256"] != clean["sha256"]


def test_v2_readings_query_asks_for_the_flags_and_reads_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the recording v2 stand-in: the readings' Flux keeps ts_corrected / ts_uncertain, and a pivoted
    boolean true becomes a time hole (an absent one, empty in annotated CSV, none)."""
    t = [iso(BASE_MS + i * STEP_MS) for i in range(3)]
    time_col = [("_time", "dateTime:RFC3339")]
    head = [*time_col, ("crate", "string"), ("profile", "string"), ("sensor", "string"), ("value_c", "double")]
    head += [("seq", "long"), ("ts_corrected", "boolean"), ("ts_uncertain", "boolean")]
    rows = [
        [t[0], "C-V2", "cryo", "probe1", "-170", "0", "", ""],
        [t[1], "C-V2", "cryo", "probe1", "-170", "1", "true", ""],
    ]
    rows.append([t[2], "C-V2", "cryo", "probe1", "-170", "2", "", ""])
    header = [
        "#datatype,string,long," + ",".join(kind for _, kind in head),
        "#group,false,false," + ",".join("false" for _ in head),
        "#default,_result,," + ",".join("" for _ in head),
        ",result,table," + ",".join(name for name, _ in head),
    ]
    readings = "\n".join(header + [",,0," + ",".join(row) for row in rows]) + "\n\n"

    def one(column: str) -> str:
        return "\n".join(
            ["#datatype,string,long,dateTime:RFC3339", "#group,false,false,false", "#default,_result,,",
             ",result,table,_time", f",,0,{column}"]
        ) + "\n\n"  # fmt: skip

    token = tmp_path / "token"
    token.write_text("tok\n")
    argv = ["C-V2", "--format", "json", "--api", "v2", "--org", "qa", "--bucket", "cold", "--token-file", str(token)]
    with recording_v2_standin(["", one(t[0]), one(t[2]), readings, "", "", ""]) as standin:
        assert main([*argv, "--influx-url", standin.url]) == 0
    flux = json.loads(standin.requests[3]["body"])["query"]
    assert 'r._field == "ts_corrected" or r._field == "ts_uncertain"' in flux
    report = json.loads(capsys.readouterr().out)
    assert [(h["kind"], h["start_ms"], h["end_ms"]) for h in report["incomplete"]] == [
        ("time", BASE_MS + STEP_MS, BASE_MS + STEP_MS)
    ]
    assert [r.get("ts_corrected") for r in report["readings"]] == [None, True, None]
