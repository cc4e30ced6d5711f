"""``coldchain release``: QA's decision recorded in the real influxd on data the real gateway wrote, shown by the
report, refused once the data changed; bad use is one line and exit status 2; v2 through the recording stand-in."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import recording_v2_standin
from gateway_helpers import ROOT, Connect, GatewayProcess, gateway_config, seqs_stored
from test_cli_report import _annotated
from wait_helpers import wait_until

from cli.release import main as release_main
from cli.report import main as report_main
from cli.services import InfluxDB, Mosquitto
from cli.window import iso

SHA = "ab" * 32


def _documented_release_query() -> str:
    """The InfluxQL query for release decisions as docs/queries.md prints it."""
    docs = (ROOT / "docs" / "queries.md").read_text()
    return next(part for part in docs.split("`") if part.startswith("SELECT") and 'FROM "release"' in part)


def _report(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert report_main([*args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.integration
def test_release_is_recorded_shown_by_the_report_and_refused_once_the_data_changed(
    tmp_path: Path,
    make_mosquitto: Callable[..., Mosquitto],
    influxdb: InfluxDB,
    database: str,
    crate_prefix: str,
    capsys: pytest.CaptureFixture[str],
    connect: Connect,
) -> None:
    """Released on the hash of the report read: a ``release`` point, shown on the report as taken on this data;
    after one more reading arrives through the gateway, a release on the old hash is refused, nothing written."""
    crate, shipment = f"{crate_prefix}-r", f"SHP-{crate_prefix}"
    broker = make_mosquitto()
    config = gateway_config(tmp_path, broker, influxdb, database, f'[shipments."{shipment}"]\ncrates = ["{crate}"]\n')
    start = int(time.time() * 1000) - 600_000
    args = [shipment, "--influx-url", influxdb.url, "--database", database]
    with GatewayProcess(config, tmp_path / "gw.log"):
        client = connect(broker)
        for seq in range(6):
            client.send(crate, [seq], value=-170.0, ts=start + seq * 10_000)
        wait_until(lambda: len(seqs_stored(influxdb, database, crate)) == 6, 10, "six readings stored")
        read = _report(args, capsys)
        decision = ["--by", "qa.carol", "--decision", "released", "--note", "record complete, within profile"]
        assert release_main([*args, *decision, "--sha256", read["sha256"].upper()]) == 0
        assert f"shipment {shipment} released by qa.carol" in capsys.readouterr().out
        documented = _documented_release_query().replace("S-2026-0117", shipment)
        rows = influxdb.rows(documented, database)
        assert [(r["by"], r["decision"], r["note"], r["sha256"], r["verdict"]) for r in rows] == [
            ("qa.carol", "released", "record complete, within profile", read["sha256"], "within profile")
        ]
        shown = _report(args, capsys)
        assert [(x["decision"], x["by"], x["note"], x["on_this_data"]) for x in shown["releases"]] == [
            ("released", "qa.carol", "record complete, within profile", True)
        ]
        pdf = tmp_path / "released.pdf"
        assert report_main([*args, "--out", str(pdf)]) == 0
        pdftotext = ["pdftotext", "-f", "1", "-l", "1", str(pdf), "-"]
        page = subprocess.run(pdftotext, capture_output=True, text=True, check=True)
        assert "RELEASED" in page.stdout
        assert "this data" in page.stdout
        client.send(crate, [6], value=-170.0, ts=start + 60_000)  # a late reading: the record changed
        wait_until(lambda: len(seqs_stored(influxdb, database, crate)) == 7, 10, "the seventh reading")
        client.close()
    capsys.readouterr()
    assert release_main([*args, *decision, "--sha256", read["sha256"]]) == 1
    err = capsys.readouterr().err
    assert (
        f"refused: the record changed since the report you read: that report's data SHA-256 is {read['sha256']}" in err
    )
    assert "7 readings" in err
    assert len(influxdb.rows("SELECT * FROM release", database)) == 1
    later = _report(args, capsys)
    assert [x["on_this_data"] for x in later["releases"]] == [False]


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["SHP-1", "--by", "qa", "--decision", "released", "--note", "ok"], "required: --sha256"),
        (["SHP-1", "--by", "qa", "--decision", "approved", "--note", "ok", "--sha256", SHA], "invalid choice"),
        (["SHP-1", "--by", "qa", "--decision", "released", "--note", "ok", "--sha256", "abc"], "64 hexadecimal"),
        (["SHP-1", "--by", " ", "--decision", "released", "--note", "ok", "--sha256", SHA], "--by must be"),
        (["SHP-1", "--by", "qa", "--decision", "rejected", "--note", "", "--sha256", SHA], "--note must be"),
        (["S/1", "--by", "qa", "--decision", "rejected", "--note", "x", "--sha256", SHA, "--from", "x"], "ISO 8601"),
        (["SHP-1", "--by", "qa", "--decision", "released", "--note", "x", "--sha256", SHA, "--since", "6h"], "--from"),
    ],
    ids=["no-sha256", "bad-decision", "bad-sha256", "blank-by", "empty-note", "bad-time", "since"],
)
def test_bad_use_is_one_line_and_exit_status_2(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad argument: one line on stderr naming it, exit status 2, nothing asked of InfluxDB."""
    with pytest.raises(SystemExit) as exited:
        release_main([*argv, "--influx-url", "http://127.0.0.1:9"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("coldchain release: ")
    assert problem in err


def test_bad_use_from_the_command_line_prints_no_traceback() -> None:
    """Through the ``coldchain`` entry point: exit status 2 and one line, no Python traceback."""
    argv = ["release", "C-1", "--by", "qa", "--decision", "maybe", "--note", "x", "--sha256", SHA]
    command = [sys.executable, "-m", "cli.main", *argv]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_v2_release_writes_the_point_through_recording_standin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Against the recording v2 stand-in, release reads the record (Flux) and writes its ``release`` point to the
    bucket (influxdb-client, millisecond precision)."""
    t = [iso(1_764_086_400_000 + i * 10_000) for i in range(2)]
    time_col = [("_time", "dateTime:RFC3339")]
    readings = _annotated(
        [*time_col, ("crate", "string"), ("profile", "string"), ("sensor", "string"), ("value_c", "double"),
         ("seq", "long")],
        [[t[i], "C-V2", "cryo", "probe1", "-170", str(i)] for i in range(2)],
    )  # fmt: skip
    answers = ["", _annotated(time_col, [[t[0]]]), _annotated(time_col, [[t[1]]]), readings, "", "", ""]
    token = tmp_path / "token"
    token.write_text("tok\n")
    v2 = ["--api", "v2", "--org", "qa", "--bucket", "cold", "--token-file", str(token)]
    with recording_v2_standin(answers) as standin:
        assert report_main(["C-V2", "--format", "json", *v2, "--influx-url", standin.url]) == 0
    sha = json.loads(capsys.readouterr().out)["sha256"]
    decision = ["--by", "qa.dan", "--decision", "rejected", "--note", "probe not calibrated", "--sha256", sha]
    with recording_v2_standin(answers) as standin:
        assert release_main(["C-V2", *decision, *v2, "--influx-url", standin.url]) == 0
    (write,) = [r for r in standin.requests if r["path"].startswith("/api/v2/write")]
    assert "bucket=cold" in write["path"]
    assert "precision=ms" in write["path"]
    assert write["body"].startswith('release,crate=C-V2 by="qa.dan",decision="rejected",note="probe not calibrated"')
    assert f'sha256="{sha}"' in write["body"]
