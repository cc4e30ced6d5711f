"""``coldchain ack`` against a real mosquitto and gateway: recorded, refused, unanswered, never a guessed sensor."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_helpers import Client, Connect, GatewayProcess, gateway_config
from gateway_helpers import telemetry as telemetry_payload
from wait_helpers import wait_until

from cli.main import main
from cli.services import InfluxDB, Mosquitto, free_port
from coldchain.topics import parse_topic
from coldchain.wire import decode_staff_ack

REPO = Path(__file__).resolve().parents[2]


def _ack(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "ack", *args, "--timeout", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip


def _ack_here(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``coldchain ack`` in this process: (exit status, stderr)."""
    try:
        status = main(["ack", *args, "--timeout", "3"])
    except SystemExit as exc:  # argparse's own usage errors
        status = int(exc.code or 0)
    return status, capsys.readouterr().err


@pytest.fixture
def live(
    make_mosquitto: Callable[..., Mosquitto], influxdb: InfluxDB, database: str, tmp_path: Path
) -> Iterator[tuple[Mosquitto, Client]]:
    """A broker of the test's own (its retained alarms stay there) with a gateway on it, and a crate's client."""
    broker = make_mosquitto()
    config = gateway_config(tmp_path, broker, influxdb, database)
    client = Client(broker)
    with GatewayProcess(config, tmp_path / "gateway.log"):
        yield broker, client
    client.close()


def _send(client: Client, crate: str, values: list[dict[str, float]]) -> None:
    """Live telemetry of ``crate``: one message per dict of sensor -> value, a second apart, ending now."""
    now = int(time.time() * 1000)
    for seq, readings in enumerate(values, 1):
        body = {
            "v": 1, "crate": crate, "seq": seq, "ts": now - (len(values) - seq) * 1000,
            "readings": [{"sensor": s, "value_c": v} for s, v in readings.items()],
        }  # fmt: skip
        client.publish(f"coldchain/v1/crates/{crate}/telemetry", json.dumps(body).encode())


def _retained(broker: Mosquitto, topic: str, want: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The retained alarm on ``topic`` once ``want`` holds for it."""
    found: dict[str, Any] = {}

    def check() -> bool:
        reader = Client(broker, [topic])
        try:
            time.sleep(0.2)
            bodies = reader.received(topic)
        finally:
            reader.close()
        found.update(bodies[-1] if bodies else {})
        return bool(bodies) and want(bodies[-1])

    wait_until(check, 15, f"the retained alarm on {topic}")
    return found


def _broker_args(broker: Mosquitto) -> tuple[str, ...]:
    return ("--host", broker.host, "--port", str(broker.port))


@pytest.mark.integration
def test_ack_recorded_by_the_gateway_exits_0_saying_so(live: tuple[Mosquitto, Client], crate_prefix: str) -> None:
    """The gateway records the ack: the command says so, exits 0, and the retained alarm names the person."""
    broker, client = live
    crate = f"{crate_prefix}-R"
    _send(client, crate, [{"probe1": -140.0}])
    topic = f"coldchain/v1/alarms/{crate}/critical_high/probe1"
    _retained(broker, topic, lambda a: a["state"] == "active")
    done = _ack(crate, "critical_high", "probe1", "--by", "Ana Ruiz", "--note", "re-iced", *_broker_args(broker))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"recorded: alarm {crate}/critical_high/probe1/")
    assert "acknowledged by Ana Ruiz" in done.stdout
    alarm = _retained(broker, topic, lambda a: a["state"] == "acknowledged")
    assert (alarm["acknowledged_by"], alarm["note"]) == ("Ana Ruiz", "re-iced")


@pytest.mark.integration
def test_ack_refused_by_the_gateway_exits_1_with_its_reason(live: tuple[Mosquitto, Client], crate_prefix: str) -> None:
    """An alarm someone else already took on: the gateway refuses the ack; the command prints why and exits 1."""
    broker, client = live
    crate = f"{crate_prefix}-X"
    _send(client, crate, [{"probe1": -140.0}])
    _retained(broker, f"coldchain/v1/alarms/{crate}/critical_high/probe1", lambda a: a["state"] == "active")
    first = _ack(crate, "critical_high", "probe1", "--by", "Ana", "--note", "mine", *_broker_args(broker))
    assert first.returncode == 0, first.stderr
    second = _ack(crate, "critical_high", "probe1", "--by", "Ben", "--note", "me too", *_broker_args(broker))
    assert second.returncode == 1
    assert "REFUSED by the gateway: ack_rejected:" in second.stderr
    assert "already acknowledged by Ana" in second.stderr


@pytest.mark.integration
def test_left_out_sensor_is_never_guessed_among_several(
    live: tuple[Mosquitto, Client], crate_prefix: str, connect: Connect
) -> None:
    """Two probes in alarm and no SENSOR: nothing is sent, both candidates are listed, exit 2."""
    broker, client = live
    crate = f"{crate_prefix}-A"
    acks = connect(broker, [f"coldchain/v1/acks/{crate}/#"])
    _send(client, crate, [{"probe1": -140.0, "probe2": -141.0}])
    for probe in ("probe1", "probe2"):
        _retained(broker, f"coldchain/v1/alarms/{crate}/critical_high/{probe}", lambda a: a["state"] == "active")
    done = _ack(crate, "critical_high", "--by", "Ana", "--note", "which?", *_broker_args(broker))
    assert done.returncode == 2
    assert f"not sent: {crate} has 2 critical_high alarms awaiting someone: probe1 (critical, active" in done.stderr
    assert "probe2 (critical, active" in done.stderr
    time.sleep(0.3)
    assert acks.received() == []
    acks.close()


@pytest.mark.integration
def test_left_out_sensor_of_the_only_alarm_is_that_alarms(live: tuple[Mosquitto, Client], crate_prefix: str) -> None:
    """With one alarm of the rule on the crate, a left-out SENSOR means that alarm's sensor (here probe2)."""
    broker, client = live
    crate = f"{crate_prefix}-O"
    _send(client, crate, [{"probe1": -170.0, "probe2": -141.0}])
    _retained(broker, f"coldchain/v1/alarms/{crate}/critical_high/probe2", lambda a: a["state"] == "active")
    done = _ack(crate, "critical_high", "--by", "Ana", "--note", "on it", *_broker_args(broker))
    assert done.returncode == 0, done.stderr
    assert f"recorded: alarm {crate}/critical_high/probe2/" in done.stdout


@pytest.mark.integration
def test_alarm_that_cleared_unacknowledged_is_reviewed_by_an_ack(
    live: tuple[Mosquitto, Client], crate_prefix: str, influxdb: InfluxDB, database: str
) -> None:
    """An alarm that cleared before anyone acknowledged it: the ack records the review, the alarm stays cleared."""
    broker, client = live
    crate = f"{crate_prefix}-V"
    _send(client, crate, [{"probe1": -140.0}, {"probe1": -190.0}])
    topic = f"coldchain/v1/alarms/{crate}/critical_high/probe1"
    _retained(broker, topic, lambda a: a["state"] == "cleared")
    done = _ack(crate, "critical_high", "--by", "Ana", "--note", "cells checked: fine", *_broker_args(broker))
    assert done.returncode == 0, done.stderr
    assert "reviewed (it had cleared) by Ana" in done.stdout
    alarm = _retained(broker, topic, lambda a: a.get("acknowledged_by") == "Ana")
    assert (alarm["state"], alarm["note"]) == ("cleared", "cells checked: fine")
    query = f'SELECT "by", "note" FROM "alarm" WHERE "crate" = \'{crate}\' AND "state" = \'acknowledged\''
    wait_until(lambda: influxdb.rows(query, database), 10, "the review's audit point")
    assert [(r["by"], r["note"]) for r in influxdb.rows(query, database)] == [("Ana", "cells checked: fine")]


@pytest.mark.integration
def test_no_gateway_answer_exits_1_saying_so(
    make_mosquitto: Callable[..., Mosquitto], crate_prefix: str, connect: Connect
) -> None:
    """With no gateway, the ack reaches the broker (documented payload, with a request id) but exit 1 says nobody
    answered."""
    broker = make_mosquitto()
    crate = f"{crate_prefix}-N"
    acks = connect(broker, [f"coldchain/v1/acks/{crate}/#"])
    done = _ack(crate, "critical_high", "probe1", "--by", "Ana Ruiz", "--note", "re-iced", *_broker_args(broker))
    assert done.returncode == 1
    assert "NOT CONFIRMED: the gateway did not answer within 2 s" in done.stderr
    (body,) = acks.received()
    acks.close()
    topic = f"coldchain/v1/acks/{crate}/critical_high/probe1"
    ack = decode_staff_ack(json.dumps(body).encode(), parse_topic(topic).ids)
    assert (ack.crate, ack.sensor, ack.by, ack.note, ack.alarm_id) == (crate, "probe1", "Ana Ruiz", "re-iced", None)
    assert ack.request is not None


def test_unreachable_broker_names_the_address(capsys: pytest.CaptureFixture[str]) -> None:
    """With nothing listening, ack exits 1 naming host:port and what to check."""
    port = free_port()
    status, err = _ack_here(capsys, "C-1", "critical_high", "--by", "Ana", "--note", "x", "--port", str(port))
    assert status == 1
    assert f"cannot reach the broker at 127.0.0.1:{port}" in err
    assert "check that the broker runs and listens on" in err


@pytest.mark.integration
def test_broker_refusing_the_ack_says_to_check_the_acl(
    make_mosquitto: Callable[..., Mosquitto], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broker whose ACL forbids writing acks refuses the PUBACK; ack exits 1 and says to check the ACL."""
    acl = tmp_path / "acl"
    acl.write_text("topic read coldchain/v1/alarms/#\n")
    broker = make_mosquitto(extra_conf=f"acl_file {acl}\n")
    args = ("C-1", "critical_high", "probe1", "--by", "Ana", "--note", "x", *_broker_args(broker))
    status, err = _ack_here(capsys, *args)
    assert status == 1
    assert "refused to take the acknowledgement" in err
    assert "ACL lets this login write coldchain/v1/acks/#" in err


def test_bad_arguments_are_refused_before_connecting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad crate id, an empty name or a bad config value exits 2 with the problem named."""
    assert _ack_here(capsys, "C/1", "r", "--by", "Ana", "--note", "x")[1].endswith(
        "crate 'C/1' must be 1-64 of [A-Za-z0-9_.-], starting with a letter or digit\n"
    )
    status, err = _ack_here(capsys, "C-1", "r", "--by", " ", "--note", "x")
    assert (status, "--by must name you" in err) == (2, True)
    config = tmp_path / "bad.toml"
    config.write_text('[mqtt]\nhost = "127.0.0.1"\nport = "1883"\n')
    status, err = _ack_here(capsys, "C-1", "r", "--by", "Ana", "--note", "x", "--config", str(config))
    assert status == 2
    assert "bad.toml: mqtt.port: must be an integer" in err


@pytest.mark.integration
def test_late_backlog_excursion_is_listed_for_review_and_reviewed(
    make_mosquitto: Callable[..., Mosquitto],
    influxdb: InfluxDB,
    database: str,
    tmp_path: Path,
    crate_prefix: str,
    connect: Connect,
) -> None:
    """An excursion in a backlog an hour old is recorded late (paging nobody); 'alerts' lists it under NEEDS REVIEW
    by default, and 'ack' records its review."""
    broker = make_mosquitto()
    shipment = f'[shipments."SHP-L"]\nproduct = "iPSC neurons"\ncrates = ["{crate_prefix}-L"]\n[alarms]\nhold_s = 60\n'
    config = gateway_config(tmp_path, broker, influxdb, database, shipment)
    crate = f"{crate_prefix}-L"
    client = connect(broker)
    with GatewayProcess(config, tmp_path / "gateway.log"):
        hour_ago = int(time.time() * 1000) - 3_600_000
        for seq, value in enumerate([-175.0, -145.0, -176.0], 1):
            client.publish(
                f"coldchain/v1/crates/{crate}/telemetry",
                telemetry_payload(crate, seq, value, ts=hour_ago + seq * 60_000),
            )
        _retained(broker, f"coldchain/v1/alarms/{crate}/critical_high/probe1", lambda a: a.get("late") is True)
        listed = subprocess.run(
            [sys.executable, "-m", "cli.main", "alerts", *_broker_args(broker)],
            cwd=REPO, capture_output=True, text=True, timeout=20, check=True,
        )  # fmt: skip
        section = listed.stdout[listed.stdout.index("NEEDS REVIEW") :]
        assert "shipment SHP-L (iPSC neurons):" in section
        (row,) = [line for line in section.splitlines() if "critical_high" in line]
        assert row.split()[:2] == ["critical", crate]
        assert row.endswith("late")
        done = _ack(crate, "critical_high", "probe1", "--by", "Ana", "--note", "QA checked", *_broker_args(broker))
        assert done.returncode == 0, done.stderr
        assert "reviewed (it had cleared) by Ana" in done.stdout
    client.close()
