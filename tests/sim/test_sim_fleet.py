"""Fleet mode against a real mosquitto: many crates, own seqs, own logins, bounded by count and time."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from gateway_helpers import Client, Connect, wait_until

from cli.provision import mosquitto_password_hash
from cli.services import Mosquitto
from coldchain.wire import decode_telemetry


def _fleet(broker: Mosquitto, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "firmware_sim", "fleet", "--mqtt-port", str(broker.port), "--json", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _seqs_by_crate(client: Client, prefix: str) -> dict[str, list[int]]:
    seqs: dict[str, list[int]] = defaultdict(list)
    for body in client.received(f"coldchain/v1/crates/{prefix}"):
        message = decode_telemetry(json.dumps(body).encode())
        seqs[message.crate].append(message.seq)
    return seqs


@pytest.mark.integration
def test_fleet_publishes_every_crate_with_its_own_seq(
    mosquitto: Mosquitto, crate_prefix: str, connect: Connect
) -> None:
    """20 crates, 200 messages: each crate's valid telemetry arrives with seq 0..9 in order; the rate is reported."""
    listener = connect(mosquitto, ["coldchain/v1/crates/+/telemetry"])
    result = _fleet(mosquitto, "--crates", "20", "--prefix", crate_prefix, "--count", "200", "--rate", "1000")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["crates"], report["clients"], report["sent"], report["acked"]) == (20, 1, 200, 200)
    assert 0 < report["rate"] <= 1100
    wait_until(lambda: len(listener.received(f"coldchain/v1/crates/{crate_prefix}")) >= 200, what="200 messages")
    seqs = _seqs_by_crate(listener, crate_prefix)
    assert len(seqs) == 20
    assert all(s == list(range(10)) for s in seqs.values())
    listener.close()


@pytest.mark.integration
def test_fleet_of_a_thousand_crates_with_a_client_each(
    mosquitto: Mosquitto, crate_prefix: str, connect: Connect
) -> None:
    """1,000 crates, one MQTT client each, 2,000 messages at 4,000 msg/s: all acknowledged, every crate heard."""
    listener = connect(mosquitto, ["coldchain/v1/crates/+/telemetry"])
    args = ("--crates", "1000", "--client-per-crate", "--prefix", crate_prefix, "--count", "2000", "--rate", "4000")
    result = _fleet(mosquitto, *args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["clients"], report["acked"]) == (1000, 2000)
    prefix = f"coldchain/v1/crates/{crate_prefix}"
    wait_until(lambda: len(listener.received(prefix)) >= 2000, timeout=20, what="2000 messages")
    seqs = _seqs_by_crate(listener, crate_prefix)
    assert len(seqs) == 1000
    assert {tuple(s) for s in seqs.values()} == {(0, 1)}
    listener.close()


@pytest.mark.integration
def test_fleet_stops_at_its_duration_and_reports_the_rate(mosquitto: Mosquitto, crate_prefix: str) -> None:
    """--duration 0.5 at 200 msg/s ends after about 100 messages although --count allows a million."""
    started = time.monotonic()
    args = ("--crates", "5", "--prefix", crate_prefix, "--count", "1000000", "--rate", "200", "--duration", "0.5")
    result = _fleet(mosquitto, *args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert 80 <= report["sent"] <= 110
    assert report["acked"] == report["sent"]
    assert time.monotonic() - started < 10


@pytest.fixture
def secured_broker(make_mosquitto: Callable[..., Mosquitto], tmp_path: Path) -> tuple[Mosquitto, Path]:
    """A broker that accepts only the logins of crates FL-1..FL-10, and a credentials file for them."""
    passwords = {f"FL-{i}": f"pw-{i}-secret" for i in range(1, 11)}
    password_file = tmp_path / "passwd"
    password_file.write_text("".join(f"{u}:{mosquitto_password_hash(p)}\n" for u, p in passwords.items()))
    password_file.chmod(0o600)
    broker = make_mosquitto(f"allow_anonymous false\npassword_file {password_file}\n")
    credentials = tmp_path / "fleet.credentials"
    credentials.write_text("# crate password\n" + "".join(f"{u} {p}\n" for u, p in passwords.items()))
    return broker, credentials


@pytest.mark.integration
def test_fleet_logs_in_as_each_crate(secured_broker: tuple[Mosquitto, Path]) -> None:
    """With --credentials every crate connects with its own username and password; all messages acknowledged."""
    broker, credentials = secured_broker
    result = _fleet(broker, "--credentials", str(credentials), "--count", "100", "--rate", "1000")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["crates"], report["clients"], report["acked"]) == (10, 10, 100)


@pytest.mark.integration
def test_fleet_with_a_wrong_password_names_the_refused_crate(secured_broker: tuple[Mosquitto, Path]) -> None:
    """A crate whose password the broker refuses stops the run with status 1 and names that crate."""
    broker, credentials = secured_broker
    credentials.write_text(credentials.read_text().replace("pw-3-secret", "wrong"))
    result = _fleet(broker, "--credentials", str(credentials), "--count", "10")
    assert result.returncode == 1
    assert "sim-FL-3: connection refused" in result.stderr


def test_malformed_credentials_file_is_refused_with_its_line(tmp_path: Path) -> None:
    """A credentials line without a password stops with status 2 naming the file and line."""
    credentials = tmp_path / "bad.credentials"
    credentials.write_text("FL-1 pw\nFL-2\n")
    result = subprocess.run(
        [sys.executable, "-m", "firmware_sim", "fleet", "--credentials", str(credentials)],
        check=False,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 2
    assert f"{credentials}:2: expected '<crate-id> <password>'" in result.stderr


@pytest.mark.integration
def test_fleet_replays_a_scenario_for_every_crate_in_simulated_time(
    mosquitto: Mosquitto, crate_prefix: str, connect: Connect
) -> None:
    """--scenario: each crate's messages step 5 simulated minutes apart and follow the LN2 shipper running dry."""
    listener = connect(mosquitto, ["coldchain/v1/crates/+/telemetry"])
    scenario = Path(__file__).resolve().parents[2] / "config" / "scenarios" / "cryo-ln2-out-day3.toml"
    epoch = 1_764_086_400_000
    per_crate = 4 * 24 * 12  # the whole 4-day shipment at one message per 5 minutes
    args = ("--scenario", str(scenario), "--period", "300", "--epoch-ms", str(epoch), "--seed", "1")
    more = ("--crates", "3", "--prefix", crate_prefix, "--count", str(3 * per_crate), "--rate", "5000")
    result = _fleet(mosquitto, *args, *more)
    assert result.returncode == 0, result.stderr
    prefix = f"coldchain/v1/crates/{crate_prefix}"
    wait_until(lambda: len(listener.received(prefix)) >= 3 * per_crate, timeout=20, what="every message")
    by_crate: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for body in listener.received(prefix):
        message = decode_telemetry(json.dumps(body).encode())
        value = message.readings[0].value_c
        assert value is not None
        by_crate[message.crate].append((message.ts, value))
    assert len(by_crate) == 3
    for series in by_crate.values():
        assert [ts for ts, _ in series] == [epoch + k * 300_000 for k in range(per_crate)]
        day1, day4 = series[24 * 12][1], series[-1][1]
        assert -183.0 < day1 < -181.0  # LN2 vapour while nitrogen remains
        assert day4 > -150.0  # dry since day 3: past the cryo critical limit
    listener.close()
