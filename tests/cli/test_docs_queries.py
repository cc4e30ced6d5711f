"""Every query README.md and docs/queries.md print gives the right answer on a record made by the real gateway.

One record per module, made through the real broker by the real gateway into a real influxd: a live
crate on a shipment (an alarm raised, escalated, acknowledged, cleared; a second one raised and
cleared; a gap; QA's release decision, by ``coldchain release``) and a crate whose late backlog held a
whole excursion. Each InfluxQL query is run as printed, only its ids and dates swapped for the record's,
and its answer checked. The Flux
versions are checked for their form against the README's schema and sent through influxdb-client
to the recording v2 stand-in (no v2 server can be installed here).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import recording_v2_standin
from gateway_helpers import PROFILES, ROOT, Client, GatewayProcess, gateway_config, telemetry
from influxdb_client import InfluxDBClient
from wait_helpers import wait_until

from cli.release import main as release_main
from cli.report import main as report_main
from cli.services import InfluxDB, Mosquitto
from coldchain.wire import StaffAck, encode

pytestmark = pytest.mark.integration

DOCS = (ROOT / "README.md", ROOT / "docs" / "queries.md")
MIN_MS = 60_000
HOUR_MS = 3_600_000
PERSON, NOTE = "Dana Ops", "re-iced the shipper"
RELEASE_NOTE = "excursion of 2 min reviewed against stability data"
ORIGIN, DESTINATION, PRODUCT = "Kyoto CiRA", "Leiden LUMC", "iPSC cardiomyocytes"
# the shipped cryo limits, without the trend and silence rules whose timing a short record cannot pin down
PROFILE = """[cryo]
[[cryo.rules]]
name = "warning_high"
kind = "high"
threshold_c = -160.0
severity = "warning"
hysteresis_c = 2.0
[[cryo.rules]]
name = "critical_high"
kind = "high"
threshold_c = -150.0
severity = "critical"
hysteresis_c = 2.0
"""
LIVE_VALUES = {0: -170.0, 1: -171.0, 2: -145.0, 5: -147.0, 6: -170.0}  # seqs 3 and 4 never sent: a gap
LIVE_FLAGS = {1: "ts_corrected", 6: "ts_uncertain"}  # taken while the crate's clock was unset
BACKLOG_VALUES = {0: -172.0, 1: -171.0, 2: -148.0, 3: -147.0, 4: -171.0, 5: -172.0}  # an excursion, all late


@dataclass(frozen=True)
class Record:
    """What the gateway was given, to check the answers against."""

    database: str
    live: str  # on the shipment: raise, escalate, acknowledge, gap, clear
    backlog: str  # its data arrived 50 minutes late: an excursion reported late
    shipment: str
    readings: dict[str, dict[int, tuple[int, float]]]  # crate -> seq -> (ts, value_c)
    ack_ts: int
    start_ms: int
    end_ms: int
    place_ts: int  # the live crate's position fix; its loss 1 ms later, its tip and jolt 2 ms later

    def ts(self, crate: str, seq: int) -> int:
        """When the crate's reading ``seq`` was taken."""
        return self.readings[crate][seq][0]

    def alarm_id(self, crate: str, rule: str, seq: int) -> str:
        """The id of the alarm the crate's reading ``seq`` raised (no rule here has a delay)."""
        return f"{crate}/{rule}/probe1/{self.ts(crate, seq)}"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _retained(client: Client, crate: str, rule: str) -> dict[str, Any]:
    bodies = client.received(f"coldchain/v1/alarms/{crate}/{rule}/probe1")
    return bodies[-1] if bodies else {}


def _count(influxdb: InfluxDB, database: str, query: str) -> int:
    return len(influxdb.rows(query, database))


def _make_record(tmp: Path, mosquitto: Mosquitto, influxdb: InfluxDB) -> Record:
    name = f"Q{os.getpid()}"
    live, backlog, shipment, database = f"{name}-A", f"{name}-B", f"{name}-S", f"q{os.getpid()}_docs"
    profiles = tmp / "profiles.toml"
    profiles.write_text(PROFILE)
    extra = (
        f'[shipments."{shipment}"]\norigin = "{ORIGIN}"\ndestination = "{DESTINATION}"\nproduct = "{PRODUCT}"\n'
        f'crates = ["{live}"]\n[alarms]\nescalate_after_s = {{ critical = 1 }}\nhold_s = 60\n'
    )
    config = gateway_config(tmp, mosquitto, influxdb, database, extra)
    config.write_text(config.read_text().replace(json.dumps(str(PROFILES)), json.dumps(str(profiles))))
    client = Client(mosquitto, [f"coldchain/v1/alarms/{live}/#", f"coldchain/v1/alarms/{backlog}/#"])
    readings: dict[str, dict[int, tuple[int, float]]] = {live: {}, backlog: {}}

    def send(crate: str, seq: int, value: float, ts: int) -> None:
        readings[crate][seq] = (ts, value)
        flags = {LIVE_FLAGS[seq]: True} if crate == live and seq in LIVE_FLAGS else {}
        client.publish(f"coldchain/v1/crates/{crate}/telemetry", telemetry(crate, seq, value, ts, **flags))

    try:
        with GatewayProcess(config, tmp / "gateway.log"):
            late_start = _now_ms() - 50 * MIN_MS
            for seq, value in BACKLOG_VALUES.items():
                send(backlog, seq, value, late_start + seq * MIN_MS)
            for seq in (0, 1, 2):
                send(live, seq, LIVE_VALUES[seq], _now_ms())
                time.sleep(0.01)
            place_ts = _now_ms()
            _place_events(client, live, place_ts)
            wait_until(lambda: _retained(client, live, "critical_high").get("escalated"), 10, "escalation")
            ack_ts = _now_ms()
            ack = StaffAck(live, "critical_high", "probe1", PERSON, NOTE, ack_ts)
            client.publish(f"coldchain/v1/acks/{live}/critical_high/probe1", encode(ack))
            wait_until(lambda: _retained(client, live, "critical_high").get("state") == "acknowledged", 10, "ack")
            for seq in (5, 6):
                send(live, seq, LIVE_VALUES[seq], _now_ms())
                time.sleep(0.01)
            everything = {
                "SELECT * FROM temperature": len(LIVE_VALUES) + len(BACKLOG_VALUES),
                f"SELECT * FROM alarm WHERE crate = '{live}'": 5,  # critical: 3 transitions, warning: 2
                f"SELECT * FROM alarm WHERE crate = '{backlog}'": 4,
                "SELECT * FROM alarm WHERE escalated_ts > 0": 1,
                "SELECT * FROM gap": 1,
                "SELECT * FROM shipment": 1,
                "SELECT * FROM position": 2,
                "SELECT * FROM orientation": 1,
                "SELECT * FROM shock": 1,
            }
            wait_until(lambda: all(_count(influxdb, database, q) >= n for q, n in everything.items()), 15, "record")
    finally:
        client.close()
    _release(influxdb, database, shipment)
    start = min(ts for crate in readings.values() for ts, _ in crate.values())
    end = max([ack_ts] + [ts for crate in readings.values() for ts, _ in crate.values()])
    return Record(database, live, backlog, shipment, readings, ack_ts, start - 1000, end + 1000, place_ts)


def _place_events(client: Client, crate: str, ts: int) -> None:
    """Where the crate was and how it stood: a fix, its loss, a tip and the jolt of it."""
    for offset, event, fields in (
        (0, "position", {"lat": 52.298, "lon": 4.763, "speed_kmh": 0.0, "satellites": 9}),
        (1, "gps_no_fix", {"satellites": 2}),
        (2, "orientation", {"tilt_deg": 88.5}),
        (2, "shock", {"shock_g": 3.5, "tilt_deg": 88.5}),
    ):
        body = {"v": 1, "crate": crate, "ts": ts + offset, "event": event, "probe": "gps0", **fields}
        client.publish(f"coldchain/v1/crates/{crate}/events", json.dumps(body).encode())


def _release(influxdb: InfluxDB, database: str, shipment: str) -> None:
    """QA's decision on the shipment, as ``coldchain release`` records it on the hash of its report."""
    where = ["--influx-url", influxdb.url, "--database", database]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert report_main([shipment, "--format", "json", *where]) == 0
        sha = json.loads(out.getvalue())["sha256"]
        decision = ["--by", PERSON, "--decision", "released", "--note", RELEASE_NOTE, "--sha256", sha]
        assert release_main([shipment, *decision, *where]) == 0


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto, influxdb: InfluxDB) -> Record:
    """The shared record, made once for the module by the real gateway."""
    return _make_record(tmp_path_factory.mktemp("docs-queries"), mosquitto, influxdb)


# --- the queries, as the docs print them ---------------------------------------------------------


def _fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def influxql_queries() -> list[str]:
    """Every InfluxQL query the docs print: each statement of a ```sql block, and each inline `SELECT …`."""
    queries: list[str] = []
    for doc in DOCS:
        text = doc.read_text()
        for block in _fenced(text, "sql"):
            for line in block.splitlines():
                if line.startswith("SELECT"):
                    queries.append(line)
                elif line.strip() and not line.startswith("--"):
                    queries[-1] += " " + line.strip()  # a statement continued on the next line
        prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
        queries += re.findall(r"`(SELECT [^`]* FROM [^`]+)`", prose)
    return list(dict.fromkeys(queries))


def flux_queries() -> list[str]:
    """Every ```flux block of the docs."""
    return list(dict.fromkeys(b for doc in DOCS for b in _fenced(doc.read_text(), "flux")))


DOC_WINDOWS = (("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"), ("2026-11-20T08:00:00Z", "2026-11-22T17:30:00Z"))


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def as_run(query: str, rec: Record) -> str:
    """The query as printed, with the docs' example ids and dates swapped for the record's."""
    swaps = {"C-0042": rec.live, "SHP-7": rec.shipment, "S-2026-0117": rec.shipment}
    for start, end in DOC_WINDOWS:
        swaps |= {start: _iso(rec.start_ms), end: _iso(rec.end_ms)}
    for old, new in swaps.items():
        query = query.replace(old, new)
    return query


# --- what each answer must be -----------------------------------------------------------------------

Rows = list[dict[str, Any]]


def _last_reading(rows: Rows, rec: Record) -> None:
    expected = {(c, "probe1"): values[max(values)][1] for c, values in rec.readings.items()}
    assert {(r["crate"], r["sensor"]): r["value_c"] for r in rows} == expected


def _excursions(rows: Rows, rec: Record) -> None:
    got = [(r["crate"], r["rule"], r["severity"], r["value_c"], r["threshold_c"], r["seq"], r["id"]) for r in rows]
    expected = [
        (crate, rule, severity, rec.readings[crate][2][1], threshold, 2, rec.alarm_id(crate, rule, 2))
        for crate in (rec.live, rec.backlog)
        for rule, severity, threshold in (("critical_high", "critical", -150.0), ("warning_high", "warning", -160.0))
    ]
    assert sorted(got) == sorted(expected)  # each excursion once, the escalated one included


def _shipment_trace(rows: Rows, rec: Record) -> None:
    got = [(r["crate"], r["sensor"], r["time"], r["seq"], r["value_c"]) for r in rows]
    assert got == [(rec.live, "probe1", ts, seq, value) for seq, (ts, value) in sorted(rec.readings[rec.live].items())]


def _acknowledgements(rows: Rows, rec: Record) -> None:
    got = [(r["crate"], r["rule"], r["sensor"], r["time"], r["by"], r["note"], r["id"]) for r in rows]
    critical = rec.alarm_id(rec.live, "critical_high", 2)
    assert got == [(rec.live, "critical_high", "probe1", rec.ack_ts, PERSON, NOTE, critical)]


def _escalations(rows: Rows, rec: Record) -> None:
    (row,) = rows
    critical = rec.alarm_id(rec.live, "critical_high", 2)
    assert (row["crate"], row["rule"], row["id"]) == (rec.live, "critical_high", critical)
    assert rec.ts(rec.live, 2) < row["escalated_ts"] < rec.ack_ts


def _warmer_than_critical(rows: Rows, rec: Record) -> None:
    got = {(r["crate"], r["seq"], r["value_c"]) for r in rows}
    expected = {(c, seq, v) for c, values in rec.readings.items() for seq, (_, v) in values.items() if v > -150}
    assert got == expected
    assert len(expected) == 4


def _crate_trace(rows: Rows, rec: Record) -> None:
    got = [(r["sensor"], r["time"], r["seq"], r["value_c"]) for r in rows]
    assert got == [("probe1", ts, seq, value) for seq, (ts, value) in sorted(rec.readings[rec.live].items())]


def _corrected_times(rows: Rows, rec: Record) -> None:
    got = [(r["sensor"], r["time"], r["seq"], r["value_c"], r["ts_corrected"], r["ts_uncertain"]) for r in rows]
    live = rec.readings[rec.live]
    assert got == [
        ("probe1", live[1][0], 1, live[1][1], True, None),
        ("probe1", live[6][0], 6, live[6][1], None, True),
    ]


def _route(rows: Rows, rec: Record) -> None:
    got = [(r["time"], r["fix"], r["lat"], r["lon"], r["speed_kmh"], r["satellites"]) for r in rows]
    assert got == [(rec.place_ts, True, 52.298, 4.763, 0.0, 9), (rec.place_ts + 1, False, None, None, None, 2)]


def _orientation(rows: Rows, rec: Record) -> None:
    assert [(r["time"], r["tilt_deg"]) for r in rows] == [(rec.place_ts + 2, 88.5)]


def _shocks(rows: Rows, rec: Record) -> None:
    assert [(r["time"], r["shock_g"], r["tilt_deg"]) for r in rows] == [(rec.place_ts + 2, 3.5, 88.5)]


def _shipment_record(rows: Rows, rec: Record) -> None:
    (row,) = rows
    got = (row["shipment"], row["crate"], row["origin"], row["destination"], row["product"])
    assert got == (rec.shipment, rec.live, ORIGIN, DESTINATION, PRODUCT)


def _alarm_transitions(rows: Rows, rec: Record) -> None:
    got = sorted((r["rule"], r["time"], r["state"], r["escalated_ts"] is not None, r["by"]) for r in rows)
    raised, cleared = rec.ts(rec.live, 2), rec.ts(rec.live, 6)
    assert got == [
        ("critical_high", raised, "active", True, None),
        ("critical_high", rec.ack_ts, "acknowledged", False, PERSON),
        ("critical_high", cleared, "cleared", False, None),
        ("warning_high", raised, "active", False, None),
        ("warning_high", cleared, "cleared", False, None),
    ]
    assert {r["id"] for r in rows if r["rule"] == "critical_high"} == {rec.alarm_id(rec.live, "critical_high", 2)}


def _gaps(rows: Rows, rec: Record) -> None:
    got = [(r["time"], r["first_missing"], r["last_missing"], r["missing"], r["state"]) for r in rows]
    assert got == [(rec.ts(rec.live, 5), 3, 4, 2, "open")]


def _hourly(rows: Rows, rec: Record) -> None:
    hours: dict[int, list[float]] = {}
    for ts, value in rec.readings[rec.live].values():
        hours.setdefault(ts // HOUR_MS * HOUR_MS, []).append(value)
    expected = [(h, "probe1", min(v), max(v), pytest.approx(sum(v) / len(v))) for h, v in sorted(hours.items())]
    assert [(r["time"], r["sensor"], r["min"], r["max"], r["mean"]) for r in rows] == expected


def _releases(rows: Rows, rec: Record) -> None:
    (row,) = rows
    got = (row["decision"], row["by"], row["note"], row["verdict"])
    assert got == ("released", PERSON, RELEASE_NOTE, "excursion: review required")
    assert re.fullmatch("[0-9a-f]{64}", row["sha256"])


CHECKS: dict[str, Callable[[Rows, Record], None]] = {
    'SELECT last("value_c") AS "value_c" FROM "temperature" WHERE time > now() - 7d GROUP BY "crate", "sensor"': (
        _last_reading
    ),
    'SELECT "value_c", "threshold_c", "seq", "id" FROM "alarm" WHERE "state" = \'active\' AND time >= '
    '\'2026-11-01T00:00:00Z\' AND time < \'2026-12-01T00:00:00Z\' GROUP BY "crate", "rule", "sensor", "severity"': (
        _excursions
    ),
    'SELECT "value_c", "seq" FROM "temperature" WHERE "shipment" = \'SHP-7\' GROUP BY "crate", "sensor"': (
        _shipment_trace
    ),
    'SELECT "by", "note", "id" FROM "alarm" WHERE "state" = \'acknowledged\' AND time >= \'2026-11-01T00:00:00Z\' '
    'AND time < \'2026-12-01T00:00:00Z\' GROUP BY "crate", "rule", "sensor"': _acknowledgements,
    'SELECT "escalated_ts", "id" FROM "alarm" WHERE "state" = \'active\' AND "escalated_ts" > 0 AND time >= '
    '\'2026-11-01T00:00:00Z\' AND time < \'2026-12-01T00:00:00Z\' GROUP BY "crate", "rule", "sensor", "severity"': (
        _escalations
    ),
    'SELECT "value_c", "seq" FROM "temperature" WHERE "profile" = \'cryo\' AND "value_c" > -150 AND time >= '
    "'2026-11-01T00:00:00Z' AND time < '2026-12-01T00:00:00Z' GROUP BY \"crate\", \"sensor\"": _warmer_than_critical,
    'SELECT "value_c", "seq" FROM "temperature" WHERE "crate" = \'C-0042\' AND time >= \'2026-11-20T08:00:00Z\' '
    "AND time < '2026-11-22T17:30:00Z' GROUP BY \"sensor\"": _crate_trace,
    'SELECT "value_c", "fault", "seq", "ts_corrected", "ts_uncertain" FROM "temperature" WHERE "crate" = \'C-0042\' '
    'AND ("ts_corrected" = true OR "ts_uncertain" = true) AND time >= \'2026-11-20T08:00:00Z\' '
    "AND time < '2026-11-22T17:30:00Z' GROUP BY \"sensor\"": _corrected_times,
    'SELECT * FROM "shipment" WHERE "shipment" = \'S-2026-0117\' ORDER BY time DESC LIMIT 1': _shipment_record,
    "SELECT * FROM \"alarm\" WHERE \"crate\" = 'C-0042' AND time >= '2026-11-20T08:00:00Z' "
    "AND time < '2026-11-22T17:30:00Z'": _alarm_transitions,
    "SELECT * FROM \"gap\" WHERE \"crate\" = 'C-0042' AND time >= '2026-11-20T08:00:00Z' "
    "AND time < '2026-11-22T17:30:00Z'": _gaps,
    'SELECT "decision", "by", "note", "sha256", "verdict" FROM "release" WHERE "shipment" = \'S-2026-0117\'': _releases,
    'SELECT "fix", "lat", "lon", "speed_kmh", "satellites" FROM "position" WHERE "crate" = \'C-0042\' AND time >= '
    "'2026-11-20T08:00:00Z' AND time < '2026-11-22T17:30:00Z'": _route,
    'SELECT "tilt_deg" FROM "orientation" WHERE "crate" = \'C-0042\' AND time >= \'2026-11-20T08:00:00Z\' '
    "AND time < '2026-11-22T17:30:00Z'": _orientation,
    'SELECT "shock_g", "tilt_deg" FROM "shock" WHERE "crate" = \'C-0042\' AND time >= \'2026-11-20T08:00:00Z\' '
    "AND time < '2026-11-22T17:30:00Z'": _shocks,
    'SELECT min("value_c"), max("value_c"), mean("value_c") FROM "temperature" WHERE "crate" = \'C-0042\' AND '
    "time >= '2026-11-20T08:00:00Z' AND time < '2026-11-22T17:30:00Z' GROUP BY time(1h), \"sensor\" fill(none)": (
        _hourly
    ),
}


def test_every_documented_query_has_a_check() -> None:
    """The InfluxQL queries README.md and docs/queries.md print are exactly those this module checks."""
    printed = influxql_queries()
    assert [q for q in printed if q not in CHECKS] == [], "a documented query without a check: add one to CHECKS"
    assert [q for q in CHECKS if q not in printed] == [], "a check for a query the docs no longer print"


@pytest.mark.parametrize("query", list(CHECKS), ids=[check.__name__.strip("_") for check in CHECKS.values()])
def test_documented_query_answers_right(query: str, record: Record, influxdb: InfluxDB) -> None:
    """The query, run as printed on the gateway's record, gives the answer the docs promise."""
    CHECKS[query](influxdb.rows(as_run(query, record), record.database), record)


# --- Flux: its form against the README's schema, and sent to the recording v2 stand-in -------------

# the Flux functions the docs may use (add one here when a query needs it, after trying it on a v2 server)
FLUX_FUNCTIONS = {"range", "filter", "group", "last", "pivot", "sort", "aggregateWindow", "mean", "min", "max"}
FLUX_COLUMNS = {"_time", "_value", "_field", "_measurement", "_start", "_stop"}


def contract() -> dict[str, tuple[set[str], set[str]]]:
    """measurement -> (tags, fields), as the README's table of InfluxDB measurements names them."""
    text = (ROOT / "README.md").read_text().split("### InfluxDB measurements", 1)[1]
    schema = {}
    for row in re.findall(r"^\| `(\w+)` \|(.*?)\|(.*?)\|", text, flags=re.MULTILINE):
        schema[row[0]] = (set(re.findall(r"`(\w+)`", row[1])), set(re.findall(r"`(\w+)`", row[2])))
    return schema


def flux_problems(flux: str) -> list[str]:
    """What is wrong with the form of one Flux query (empty when nothing is)."""
    problems = []
    bare = re.sub(r'"[^"]*"', '""', flux)
    for opening, closing in ("()", "[]", "{}"):
        if bare.count(opening) != bare.count(closing):
            problems.append(f"unbalanced {opening}{closing}")
    lines = flux.strip().splitlines()
    if not re.fullmatch(r'from\(bucket: "[^"]+"\)', lines[0]):
        problems.append(f"does not start from a bucket: {lines[0]}")
    for line in lines[1:]:
        call = re.match(r"  \|> (\w+)\(", line)
        if call is None or call[1] not in FLUX_FUNCTIONS:
            problems.append(f"not a pipeline step of a known function: {line.strip()}")
    problems += [f"aggregate {f} unknown" for f in re.findall(r"fn: (\w+)", flux) if f not in FLUX_FUNCTIONS]
    schema = contract()
    measurements = re.findall(r'r\._measurement == "(\w+)"', flux)
    problems += [f"measurement {m} not in the README" for m in measurements if m not in schema]
    tags = set().union(*(schema[m][0] for m in measurements if m in schema))
    fields = set().union(*(schema[m][1] for m in measurements if m in schema))
    problems += [f"field {f} not in the README" for f in re.findall(r'r\._field == "(\w+)"', flux) if f not in fields]
    before, pivot, after = flux.partition("|> pivot(")
    # before the pivot a row's columns are its tags; fields become columns only by pivoting
    problems += [f"{name} is no tag" for name in re.findall(r"\br\.([a-z]\w*)", before) if name not in tags]
    problems += [f"{n} not in the README" for n in re.findall(r"\br\.([a-z]\w*)", after) if n not in tags | fields]
    for names in re.findall(r"columns: \[([^\]]*)\]", flux):
        known = tags | FLUX_COLUMNS | (fields if pivot else set())
        problems += [f"column {n} unknown" for n in re.findall(r'"(\w+)"', names) if n not in known]
    return problems


def test_flux_form_check_finds_a_field_filtered_before_the_pivot() -> None:
    """The form check refuses what made the excursions Flux answer nothing: a field compared before pivot."""
    flux = 'from(bucket: "coldchain")\n  |> range(start: -1d)\n  |> filter(fn: (r) => r.state == "active")\n'
    assert flux_problems(flux) == ["state is no tag"]


@pytest.mark.parametrize("flux", flux_queries())
def test_documented_flux_uses_only_the_readme_schema(flux: str) -> None:
    """Each Flux block is one balanced pipeline of known functions over the README's measurements, tags and fields."""
    assert flux_problems(flux) == []


def test_documented_flux_is_sent_as_printed_through_influxdb_client() -> None:
    """influxdb-client accepts every Flux block and sends it unchanged to the recording v2 stand-in."""
    blocks = flux_queries()
    with (
        recording_v2_standin([""] * len(blocks)) as standin,
        InfluxDBClient(url=standin.url, token="docs", org="qa") as client,
    ):
        for flux in blocks:
            assert client.query_api().query(flux) == []
    assert [json.loads(r["body"])["query"] for r in standin.requests] == blocks
