"""``coldchain query`` against real points in a real influxd (and, for v2, the recording stand-in)."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest
from cli_helpers import fault_line, recording_v2_standin, temperature_line, write_lines

from cli.query import main
from cli.services import InfluxDB, free_port
from cli.window import iso

pytestmark = pytest.mark.integration

STEP_MS = 10_000
COUNT = 180  # 30 minutes at one reading per 10 s
BASE_MS = (int(time.time() * 1000) - 40 * 60_000) // 60_000 * 60_000


def _probe1(i: int) -> float:
    """Cold, a 2-minute warm spell past the warning limit, then 1 minute past the critical limit."""
    if 60 <= i < 72:
        return -155.0
    if 100 <= i < 106:
        return -148.0
    return -165.0


@pytest.fixture
def crate(influxdb: InfluxDB, database: str, crate_prefix: str) -> str:
    """A crate whose 30 minutes of two probes are in ``database``."""
    name = f"{crate_prefix}-Q"
    lines = []
    for i in range(COUNT):
        ts = BASE_MS + i * STEP_MS
        lines.append(temperature_line(name, "probe1", ts, _probe1(i), i))
        lines.append(temperature_line(name, "probe2", ts, -170.0, i))
    write_lines(influxdb, database, lines)
    return name


def _args(influxdb: InfluxDB, database: str) -> list[str]:
    return ["--influx-url", influxdb.url, "--database", database]


def _summary_row(out: str, sensor: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.startswith(sensor))


def test_summary_has_min_max_mean_and_time_out_of_range(
    influxdb: InfluxDB, database: str, crate: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Per probe: count, min, max, mean, time outside the critical limit, time beyond each limit with excursions."""
    assert main([crate, "--since", "1h", *_args(influxdb, database)]) == 0
    out = capsys.readouterr().out
    assert f"crate {crate}  profile cryo" in out
    # mean = (162 x -165 + 12 x -155 + 6 x -148) / 180
    assert _summary_row(out, "probe1") == [
        "probe1", "180", "-165.00", "-148.00", "-163.77", "1m00s", "3m00s", "(2", "exc.)", "1m00s", "(1", "exc.)", "0",
    ]  # fmt: skip
    assert _summary_row(out, "probe2")[:6] == ["probe2", "180", "-170.00", "-170.00", "-170.00", "0s"]


def test_readings_are_printed_with_breaches_marked(
    influxdb: InfluxDB, database: str, crate: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every reading time is a row, sensors are columns; critical breaches get '!', warning ones '*'."""
    assert main([crate, "--since", "1h", *_args(influxdb, database)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line[:4].isdigit()]
    assert len(rows) == COUNT
    assert rows[0] == [iso(BASE_MS), "-165.00", "-170.00"]
    assert rows[60][1] == "-155.00*"
    assert rows[100][1] == "-148.00!"


def test_csv_exports_every_reading_with_the_limits_it_breached(
    influxdb: InfluxDB, database: str, crate: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--csv writes one row per reading, with the seq stored and the rules the value breached."""
    assert main([crate, "--since", "1h", "--csv", *_args(influxdb, database)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 2 * COUNT
    probe1 = [r for r in rows if r["sensor"] == "probe1"]
    assert [int(r["seq"]) for r in probe1] == list(range(COUNT))
    assert probe1[100]["value_c"] == "-148.00"
    assert probe1[100]["beyond"] == "warning_high critical_high"
    assert probe1[0]["beyond"] == ""
    assert probe1[0]["ts_ms"] == str(BASE_MS)


def test_from_to_window_and_profile_override(
    influxdb: InfluxDB, database: str, crate: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--from/--to bound the readings (end exclusive); --profile judges them against another profile."""
    start, end = iso(BASE_MS + 60 * STEP_MS), iso(BASE_MS + 72 * STEP_MS)
    argv = [crate, "--from", start, "--to", end, "--profile", "dry_ice", "--summary", *_args(influxdb, database)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "profile dry_ice" in out
    assert _summary_row(out, "probe1")[:6] == ["probe1", "12", "-155.00", "-155.00", "-155.00", "0s"]


def test_unknown_crate_says_there_are_no_readings(
    influxdb: InfluxDB, database: str, crate: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crate with no readings in the window fails with a message naming it and where it looked."""
    assert main([f"{crate}-nope", "--since", "1h", *_args(influxdb, database)]) == 1
    err = capsys.readouterr().err
    assert f"no readings of crate {crate}-nope" in err
    assert database in err


def test_unreachable_influxdb_error_names_url_and_what_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    """With nothing listening, the error names the URL and says to check influxd and the URL option."""
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["C-1", "--influx-url", url]) == 1
    err = capsys.readouterr().err
    assert f"InfluxDB at {url} cannot be reached" in err
    assert "influxd" in err
    assert "--influx-url" in err


def test_missing_database_is_named(influxdb: InfluxDB, capsys: pytest.CaptureFixture[str]) -> None:
    """A database that does not exist is named, with the option to fix."""
    assert main(["C-1", "--influx-url", influxdb.url, "--database", "no_such_db"]) == 1
    assert "has no database 'no_such_db'" in capsys.readouterr().err


def test_config_file_influxdb_table_is_used(
    influxdb: InfluxDB, database: str, crate: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--config reads url and database from the gateway TOML's [influxdb] table."""
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\n\n[influxdb]\napi = "v1"\nurl = "{influxdb.url}"\n'
        f'database = "{database}"\ntimeout_s = 10\n'
    )
    assert main([crate, "--since", "1h", "--summary", "--config", str(config)]) == 0
    assert _summary_row(capsys.readouterr().out, "probe2")[1] == "180"


def test_progress_status_is_written_to_stderr(
    influxdb: InfluxDB, database: str, crate: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--progress reports what is being read and the final count on stderr, keeping stdout clean."""
    assert main([crate, "--since", "1h", "--summary", "--progress", *_args(influxdb, database)]) == 0
    captured = capsys.readouterr()
    assert f"read {2 * COUNT} readings of {crate}" in captured.err
    assert "readings" not in captured.out.splitlines()[0]


V2_ANSWER = """#datatype,string,long,dateTime:RFC3339,string,string,string,string,double,long
#group,false,false,false,false,false,false,false,false,false
#default,_result,,,,,,,,
,result,table,_time,_measurement,crate,profile,sensor,value_c,seq
,,0,{t0},temperature,C-V2,cryo,probe1,-162.31,17
,,0,{t1},temperature,C-V2,cryo,probe1,-149.5,18

"""


def test_v2_flux_query_through_recording_standin(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Against the recording v2 stand-in (no v2 server on Debian), Flux with the bucket, crate, window,
    org and token is sent and the answer is summarised like a 1.x answer."""
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    start = BASE_MS
    answer = V2_ANSWER.format(t0=iso(start), t1=iso(start + STEP_MS))
    with recording_v2_standin([answer]) as standin:
        argv = ["C-V2", "--api", "v2", "--influx-url", standin.url, "--org", "qa", "--bucket", "cold"]
        argv += ["--token-file", str(token), "--from", iso(start), "--to", iso(start + 60_000), "--summary"]
        assert main(argv) == 0
    (request,) = standin.requests
    assert request["path"].startswith("/api/v2/query?org=qa")
    assert request["authorization"] == "Token s3cret-token"
    flux = json.loads(request["body"])["query"]
    assert 'from(bucket: "cold")' in flux
    assert f"range(start: {iso(start)}, stop: {iso(start + 60_000)})" in flux
    assert 'r.crate == "C-V2"' in flux
    row = _summary_row(capsys.readouterr().out, "probe1")
    assert row[:5] == ["probe1", "2", "-162.31", "-149.50", "-155.91"]


def test_shipped_gateway_config_is_read_for_influxdb_and_profiles(
    influxdb: InfluxDB, database: str, crate: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--config config/gateway.toml (the shipped example) supplies the [influxdb] table and the profiles file."""
    shipped = Path(__file__).resolve().parents[2] / "config" / "gateway.toml"
    argv = [crate, "--since", "1h", "--summary", "--config", str(shipped), *_args(influxdb, database)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "profile cryo: warning_high >-160" in out


def test_profiles_file_named_by_the_config_gives_the_limits(
    influxdb: InfluxDB, database: str, crate: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The [profiles] file of the --config TOML (relative to it) is where the crate's limits come from."""
    (tmp_path / "site-profiles.toml").write_text(
        '[cryo]\n[[cryo.rules]]\nname = "critical_high"\nkind = "high"\nthreshold_c = -156.0\nseverity = "critical"\n'
    )
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[influxdb]\nurl = "{influxdb.url}"\ndatabase = "{database}"\n[profiles]\nfile = "site-profiles.toml"\n'
    )
    assert main([crate, "--since", "1h", "--summary", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "profile cryo: critical_high >-156" in out
    assert _summary_row(out, "probe1")[5] == "3m00s"  # -155 and -148 are both beyond -156


def test_probe_faults_are_shown_counted_and_exported(
    influxdb: InfluxDB, database: str, crate_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A probe that read OPEN shows OPEN at that time, a fault count in the summary, and a CSV row with the fault."""
    crate = f"{crate_prefix}-Z"
    lines = [temperature_line(crate, "probe1", BASE_MS + i * STEP_MS, -170.0, i) for i in range(5)]
    lines += [fault_line(crate, "probe1", BASE_MS + i * STEP_MS, "OPEN", i) for i in range(5, 8)]
    write_lines(influxdb, database, lines)
    assert main([crate, "--since", "1h", *_args(influxdb, database)]) == 0
    out = capsys.readouterr().out
    assert f"{iso(BASE_MS + 5 * STEP_MS)}         OPEN" in out
    assert _summary_row(out, "probe1")[1] == "5"
    assert _summary_row(out, "probe1")[-1] == "3"
    assert main([crate, "--since", "1h", "--csv", *_args(influxdb, database)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["value_c"], r["fault"]) for r in rows[4:]] == [("-170.00", ""), ("", "OPEN"), ("", "OPEN"), ("", "OPEN")]
