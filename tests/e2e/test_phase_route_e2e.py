"""cryo-phased-route through a real mosquitto, gateway and influxd: a phase-aware tilt rule raises once with its
true start, and ``coldchain report`` on what the gateway stored shows the route, the phases, the tilts and shocks.

The crate's messages are what its agent publishes from the scenario (``sim_scenarios.crate_inputs``: the board's
sentences through the agent's ``OrientationWatch``, the route's NMEA through its ``GpsTracker``), sent in order.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from alarm_helpers import PHASED, profile_of
from gateway_helpers import PROFILES, Client, GatewayProcess, gateway_config, seqs_stored
from sim_scenarios import EPOCH_MS, crate_inputs, load, run
from wait_helpers import wait_until

from cli.report import main
from cli.services import InfluxDB, Mosquitto
from coldchain.alarms.transition import ACTIVE
from coldchain.position.geometry import Position
from coldchain.position.phases import Area
from coldchain.wire import encode

pytestmark = pytest.mark.integration

MIN = 60_000
KYOTO_LAB, TOKYO_LAB = Position(35.0266, 135.7838), Position(35.6803, 139.7186)
AREAS = (Area(KYOTO_LAB, 2.0), Area(TOKYO_LAB, 2.0))


@dataclass(frozen=True)
class Stored:
    """What the gateway stored of the shipment, and where."""

    influxdb: InfluxDB
    database: str
    crate: str
    shipment: str
    epoch: int  # the shipment's t = 0
    profiles: Path

    def report(self, *args: str) -> list[str]:
        """The arguments of ``coldchain report`` for the shipment against the stored record."""
        return [self.shipment, "--influx-url", self.influxdb.url, "--database", self.database,
                "--profiles", str(self.profiles), *args]  # fmt: skip


def _event(crate: str, kind: str, ts: int, detail: dict[str, object]) -> bytes:
    return json.dumps({"v": 1, "crate": crate, "ts": ts, "event": kind, **detail}).encode()


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory, influxdb: InfluxDB) -> Stored:
    """The scenario's 10 hours published through a broker of its own to one gateway, shipment record with areas."""
    tmp = tmp_path_factory.mktemp("phased")
    crate, shipment = f"P{os.getpid()}-ph", f"SHP-P{os.getpid()}"
    database = f"phased{os.getpid()}"
    profiles = tmp / "profiles.toml"
    profiles.write_text(PROFILES.read_text() + PHASED)
    areas = "".join(
        f"{name}_area = {{ lat = {a.center.lat}, lon = {a.center.lon}, radius_km = {a.radius_km} }}\n"
        for name, a in zip(("origin", "destination"), AREAS, strict=True)
    )
    record = (
        f'[crates."{crate}"]\nprofile = "p"\n[shipments."{shipment}"]\ncrates = ["{crate}"]\n'
        f'origin = "Kyoto CiRA"\ndestination = "Tokyo lab"\n{areas}'
    )
    epoch = (int(__import__("time").time() * 1000) - 24 * 60 * MIN) // MIN * MIN  # a day ago: nothing from the future
    broker = Mosquitto(tmp / "mosquitto").start()
    try:
        config = gateway_config(tmp, broker, influxdb, database, record)
        config.write_text(config.read_text().replace(json.dumps(str(PROFILES)), json.dumps(str(profiles))))
        with GatewayProcess(config, tmp / "gw.log"):
            client = Client(broker)
            messages = 0
            for kind, ts, what in crate_inputs(load("cryo-phased-route"), seed=3):
                at = ts - EPOCH_MS + epoch
                if kind == "telemetry":
                    client.publish(
                        f"coldchain/v1/crates/{crate}/telemetry", encode(dataclasses.replace(what, crate=crate, ts=at))
                    )
                    messages += 1
                elif kind != "tick":
                    client.publish(f"coldchain/v1/crates/{crate}/events", _event(crate, kind, at, what))
            client.close()
            wait_until(lambda: len(seqs_stored(influxdb, database, crate)) == messages, 60, "every reading stored")
            alarms = f"SELECT * FROM alarm WHERE crate = '{crate}'"
            wait_until(lambda: len(influxdb.rows(alarms, database)) >= 2, 20, "the raised and cleared alarm")
    finally:
        broker.stop()
    return Stored(influxdb, database, crate, shipment, epoch, profiles)


def test_phase_aware_tilt_raises_once_at_the_destination_with_its_true_start(stored: Stored) -> None:
    """Laid down 30 min at the origin (silenced) and leaned 5 min in transit (under the 10 min delay): nothing;
    dropped at the destination: ``tipped`` raised once after its 60 s there, dated from the drop, and the 3.5 g
    jolt silenced there, as the pure run with the same geofences predicts; the shipped cryo profile (no phases)
    raises ``tipped`` at the origin too, and at the destination only after its 10 min."""
    rows = stored.influxdb.rows(f"SELECT * FROM alarm WHERE crate = '{stored.crate}'", stored.database)
    story = sorted((str(r["rule"]), str(r["state"]), (int(r["time"]) - stored.epoch) // MIN,  # type: ignore[call-overload]
                    (int(r["started_ts"]) - stored.epoch) // MIN) for r in rows)  # type: ignore[call-overload]  # fmt: skip
    assert story == [("tipped", "active", 481, 480), ("tipped", "cleared", 500, 480)]  # the shock: silenced there
    pure = run(load("cryo-phased-route"), seed=3, profile=profile_of(PHASED), areas=AREAS)
    assert sorted((t.rule, t.state, (t.ts - EPOCH_MS) // MIN, (t.started_ts - EPOCH_MS) // MIN)
                  for t in pure.transitions) == story  # fmt: skip
    shipped = run(load("cryo-phased-route"), seed=3)  # the cryo profile has no phases
    assert [(t.ts - EPOCH_MS) // MIN for t in shipped.transitions if t.rule == "tipped" and t.state == ACTIVE] == [
        20,
        490,
    ]


def test_gateway_stores_the_shipment_record_with_its_geofences(stored: Stored) -> None:
    """The ``shipment`` point carries the record's text fields and each geofence as three numbers."""
    (row,) = stored.influxdb.rows(f"SELECT * FROM shipment WHERE crate = '{stored.crate}'", stored.database)
    assert {k: v for k, v in row.items() if k != "time"} == {
        "crate": stored.crate, "shipment": stored.shipment, "origin": "Kyoto CiRA", "destination": "Tokyo lab",
        "origin_area_lat": KYOTO_LAB.lat, "origin_area_lon": KYOTO_LAB.lon,
        "origin_area_radius_km": 2.0, "destination_area_lat": TOKYO_LAB.lat, "destination_area_lon": TOKYO_LAB.lon,
        "destination_area_radius_km": 2.0,
    }  # fmt: skip


def test_report_json_and_csv_carry_the_route_phases_tilts_and_shocks(
    stored: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    """The JSON: the geofences, time in each phase (origin until the first fix outside it at 70 min, destination
    from the first inside it at 410 min), the route broken where the fix was lost, each tilt beyond 30° and the
    shock; the CSV: a row per phase, tilt and shock."""
    assert main(stored.report("--format", "json")) == 0
    (motion,) = json.loads(capsys.readouterr().out)["motion"]
    assert motion["crate"] == stored.crate
    assert motion["origin_area"] == {"lat": KYOTO_LAB.lat, "lon": KYOTO_LAB.lon, "radius_km": 2.0}
    assert motion["destination_area"] == {"lat": TOKYO_LAB.lat, "lon": TOKYO_LAB.lon, "radius_km": 2.0}
    minutes = [(p["phase"], (p["start_ms"] - stored.epoch) // MIN, (p["end_ms"] - stored.epoch) // MIN)
               for p in motion["phases"]]  # fmt: skip
    assert minutes == [("origin", 0, 70), ("transit", 70, 410), ("destination", 410, 599)]
    assert motion["time_in_phase_s"] == {"origin": 70 * 60, "transit": 340 * 60, "destination": 189 * 60 + 0.001}
    stretches = [[(ts - stored.epoch) // MIN for ts, _, _ in stretch] for stretch in motion["track"]]
    assert [(s[0], s[-1]) for s in stretches] == [(0, 180), (330, 590)]  # no fix from 190 (warehouse, hold)
    assert motion["track"][1][-1][1:] == [TOKYO_LAB.lat, TOKYO_LAB.lon]
    tilts = [((t["start_ms"] - stored.epoch) // MIN, (t["end_ms"] - stored.epoch) // MIN, t["peak_deg"])
             for t in motion["tilts"]]  # fmt: skip
    assert tilts == [(10, 40, 90.0), (120, 125, 70.0), (480, 500, 88.5)]
    assert motion["tilt_limit_deg"] == 30.0
    assert [((s["ts_ms"] - stored.epoch) // MIN, s["shock_g"], s["tilt_deg"]) for s in motion["shocks"]] == [
        (480, 3.5, 88.5)
    ]
    assert main(stored.report("--format", "csv")) == 0
    rows = [r for r in csv.DictReader(io.StringIO(capsys.readouterr().out)) if r["scope"] in ("phase", "tilt", "shock")]
    assert [(r["scope"], r["crate_sensor"], r["reasons"]) for r in rows] == [
        ("phase", stored.crate, "origin for 1h10m"),
        ("phase", stored.crate, "transit for 5h40m"),
        ("phase", stored.crate, "destination for 3h09m"),
        ("tilt", stored.crate, "beyond 30° (at most 90.0°)"),
        ("tilt", stored.crate, "beyond 30° (at most 70.0°)"),
        ("tilt", stored.crate, "beyond 30° (at most 88.5°)"),
        ("shock", stored.crate, "3.50 g, left at 88.5°"),
    ]


def test_report_pdf_shows_the_route_plot_phases_tilts_and_shocks(stored: Stored, tmp_path: Path) -> None:
    """The PDF (pdftotext): a route section for the crate with its plot, the time in each phase and its spans,
    the tilts beyond the limit and the shock."""
    out = tmp_path / "report.pdf"
    assert main(stored.report("--out", str(out))) == 0
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert f"Route and handling: crate {stored.crate}" in text
    assert "Time in each phase: origin 1h10m, transit 5h40m, destination 3h09m." in text
    for phase, lasted in (("origin", "1h10m"), ("transit", "5h40m"), ("destination", "3h09m")):
        assert any(line.split()[:1] == [phase] and line.rstrip().endswith(lasted) for line in text.splitlines())
    assert "tipped beyond 30°: from (UTC)" in text
    lasted = [line.split()[-2:] for line in text.splitlines() if line.rstrip().endswith("°")]
    assert lasted[:3] == [["30m00s", "90.0°"], ["5m00s", "70.0°"], ["20m00s", "88.5°"]]
    assert any(line.split()[-2:] == ["3.50", "88.5°"] for line in text.splitlines())
    images = subprocess.run(["pdfimages", "-list", str(out)], capture_output=True, text=True, check=True).stdout
    pictures = [line.split() for line in images.splitlines()[2:] if line.split()[2] == "image"]  # not their masks
    assert [(p[3], p[4]) for p in pictures] == [("1110", "405"), ("1110", "540")]  # the probe's chart, the route
