"""Shipment records (``[shipments]`` of the gateway's config): checked at start-up, written by a real gateway as
measurement ``shipment``, carried by webhook notifications and read back by ``coldchain report``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from gateway_helpers import PROFILES, ROOT, Connect, GatewayProcess, gateway_config
from notify_helpers import Receiver, alarm_events, start_receiver, webhook_channel
from wait_helpers import wait_until

from cli.report import main as report_main
from cli.services import InfluxDB, Mosquitto
from coldchain.errors import ConfigError
from gateway.config import Shipment, load_config
from gateway.notify import describe, notification_body


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gw.toml"
    path.write_text(f'[profiles]\nfile = {json.dumps(str(PROFILES))}\ndefault = "cryo"\n{text}')
    return path


def test_shipment_records_assign_their_crates() -> None:
    """A [shipments] record's crates list assigns them; a [crates] shipment without a record stays an id alone."""
    path = ROOT / "config" / "gateway.toml"
    config = load_config(path)
    record = config.shipment_of("C-0042")
    assert record is not None
    assert record.id == config.shipments["C-0042"] == "SHP-7"
    assert record.details == {"origin": "Kyoto CiRA", "destination": "Leiden LUMC", "product": "iPSC cardiomyocytes"}
    assert config.shipments["C-0043"] == "SHP-7"


def test_crate_shipment_without_record_and_agreeing_assignments_are_valid(tmp_path: Path) -> None:
    """[crates] shipment naming no record keeps only the id; naming the shipment whose crates list it is fine."""
    text = (
        '[crates."C-1"]\nshipment = "SHP-1"\n[crates."C-2"]\nshipment = "SHP-2"\n'
        '[shipments."SHP-2"]\ncrates = ["C-2", "C-3"]\norigin = "Osaka"\n'
    )
    config = load_config(_write(tmp_path, text))
    assert config.shipments == {"C-1": "SHP-1", "C-2": "SHP-2", "C-3": "SHP-2"}
    assert config.shipment_of("C-1") is None
    assert config.shipment_of("C-3") == Shipment("SHP-2", origin="Osaka")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[shipments."S-1"]\norigin = ""\n', "shipments.S-1.origin", "must not be empty"),
        (
            '[shipments."S-1"]\nproduct = "x"\n' + 'origin = "' + "a" * 201 + '"\n',
            "shipments.S-1.origin",
            "at most 200",
        ),
        ('[shipments."S-1"]\ndestination = "Leiden\\nLUMC"\n', "shipments.S-1.destination", "line break"),
        ('[shipments."S-1"]\nproduct = 7\n', "shipments.S-1.product", "must be a string"),
        ('[shipments."S-1"]\norign = "Kyoto"\n', "shipments.S-1.orign", "not a known setting"),
        ('[shipments."S 1"]\norigin = "Kyoto"\n', "shipments.S 1", "shipment ids must be"),
        ('[shipments."S-1"]\ncrates = ["C/1"]\n', "shipments.S-1.crates", "is not a crate id"),
        (
            '[shipments."S-1"]\ncrates = ["C-1"]\n[shipments."S-2"]\ncrates = ["C-1"]\n',
            "shipments.S-2.crates",
            "already in shipments.S-1.crates",
        ),
        (
            '[crates."C-1"]\nshipment = "S-2"\n[shipments."S-1"]\ncrates = ["C-1"]\n',
            "crates.C-1.shipment",
            "contradicts shipments.S-1.crates",
        ),
    ],
)
def test_bad_shipment_is_refused_naming_the_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    """Each bad shipment record raises a ConfigError naming the file, the key and the problem."""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (caught.value.source, caught.value.key) == (str(path), key)
    assert problem in caught.value.problem


def test_email_text_names_the_route_and_the_product() -> None:
    """A notification with a shipment record says what is carried from where to where; one without says nothing."""
    event = alarm_events("C-9")[0]
    record = {"id": "SHP-9", "origin": "Kyoto", "destination": "Leiden", "product": "iPSC neurons"}
    _, text = describe(notification_body(event, record))
    assert "Product: iPSC neurons\nFrom: Kyoto    To: Leiden\n" in text
    _, plain = describe(notification_body(event))
    assert "From:" not in plain
    assert "shipment" not in notification_body(event)


@pytest.mark.integration
def test_gateway_writes_the_record_once_and_notifications_and_reports_carry_it(
    tmp_path: Path,
    make_mosquitto: Callable[..., Mosquitto],
    influxdb: InfluxDB,
    database: str,
    crate_prefix: str,
    capsys: pytest.CaptureFixture[str],
    connect: Connect,
) -> None:
    """A crate of a [shipments] record: one ``shipment`` point for the run, its retained alarm and the webhook
    carry origin and destination, and ``coldchain report SHIPMENT`` shows them without options (an option
    overrides). A broker of its own: its retained alarm must not reach the session broker's later users."""
    crate, shipment = f"{crate_prefix}-s", f"SHP-{crate_prefix}"
    mosquitto = make_mosquitto()
    receiver = Receiver()
    server = start_receiver(receiver)
    extra = (
        f'[shipments."{shipment}"]\ncrates = ["{crate}"]\norigin = "Kyoto CiRA"\ndestination = "Leiden LUMC"\n'
        'product = "iPSC cardiomyocytes"\n'
    ) + webhook_channel(tmp_path, server, 'changes = ["active"]\n')
    config = gateway_config(tmp_path, mosquitto, influxdb, database, extra)
    client = connect(mosquitto, [f"coldchain/v1/alarms/{crate}/#"])
    start = int(time.time() * 1000) - 60_000
    try:
        with GatewayProcess(config, tmp_path / "gw.log"):
            client.send(crate, [1], value=-170.0, ts=start)
            first = f"SELECT * FROM shipment WHERE shipment = '{shipment}'"
            wait_until(lambda: influxdb.rows(first, database), 10, "the shipment point")
            client.send(crate, [2], value=-145.0, ts=start + 1000)  # a later batch: no second record
            bodies = wait_until(lambda: [json.loads(b) for _, b, _ in receiver.accepted()], 10, "the webhook")
            seq2 = f"SELECT seq FROM temperature WHERE crate = '{crate}' AND seq = 2"
            wait_until(lambda: influxdb.rows(seq2, database), 10, "the second reading")
            wait_until(lambda: len(client.received("coldchain/v1/alarms/")) >= 2, 10, "both retained alarms")
    finally:
        server.shutdown()
        client.close()
    rows = influxdb.rows(f"SELECT * FROM shipment WHERE shipment = '{shipment}'", database)
    assert [(r["crate"], r["origin"], r["destination"], r["product"]) for r in rows] == [
        (crate, "Kyoto CiRA", "Leiden LUMC", "iPSC cardiomyocytes")
    ]
    retained = client.received("coldchain/v1/alarms/")
    assert sorted((a["rule"], a["shipment"], a["origin"], a["destination"]) for a in retained) == [
        ("critical_high", shipment, "Kyoto CiRA", "Leiden LUMC"),
        ("warning_high", shipment, "Kyoto CiRA", "Leiden LUMC"),
    ]
    assert bodies[0]["alarm"]["shipment"] == shipment
    assert bodies[0]["alarm"]["product"] == "iPSC cardiomyocytes"
    assert bodies[0]["shipment"] == {
        "id": shipment,
        "origin": "Kyoto CiRA",
        "destination": "Leiden LUMC",
        "product": "iPSC cardiomyocytes",
    }
    args = [shipment, "--format", "json", "--influx-url", influxdb.url, "--database", database]
    assert report_main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["kind"], report["crates"]) == ("shipment", [crate])
    assert (report["origin"], report["destination"], report["product"]) == (
        "Kyoto CiRA",
        "Leiden LUMC",
        "iPSC cardiomyocytes",
    )
    assert report_main([*args, "--destination", "Leiden LUMC, cell lab 2"]) == 0
    overridden = json.loads(capsys.readouterr().out)
    assert (overridden["origin"], overridden["destination"]) == ("Kyoto CiRA", "Leiden LUMC, cell lab 2")
