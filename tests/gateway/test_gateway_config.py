"""Gateway start-up: the shipped example loads, bad config and unusable databases stop it with one clear line."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from gateway_helpers import PROFILES, ROOT, gateway_config, run_gateway

from cli.services import InfluxDB, Mosquitto, free_port
from coldchain.errors import ConfigError
from gateway.config import load_config


def test_shipped_example_loads() -> None:
    """config/gateway.toml is valid and documents the defaults the code uses."""
    config = load_config(ROOT / "config" / "gateway.toml")
    assert config.mqtt.receive_maximum == 1000
    assert config.batch.size == 500
    assert config.crate_profiles["C-0042"] == "dry_ice"
    assert config.mqtt.telemetry_filter == "coldchain/v1/crates/+/telemetry"


def test_bench_config_loads() -> None:
    """bench/gateway.toml (the peer-bench run) is valid and uses the bench's one-rule profile."""
    config = load_config(ROOT / "bench" / "gateway.toml")
    assert config.mqtt.port == 18831
    assert [r.threshold_c for r in config.profiles["cryo"].rules] == [-150.0]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gw.toml"
    path.write_text(f'[profiles]\nfile = {json.dumps(str(PROFILES))}\ndefault = "cryo"\n{text}')
    return path


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[mqtt]\nport = "x"\n', "mqtt.port", "must be an integer"),
        ("[mqtt]\nprot = 1\n", "mqtt.prot", "not a known setting"),
        ('[influxdb]\napi = "v3"\n', "influxdb.api", "is not one of"),
        ('[influxdb]\napi = "v2"\n', "influxdb.org", 'required when api = "v2"'),
        ("[batch]\nsize = 5000\n", "batch.size", "exceeds mqtt.receive_maximum"),
        ('[crates."C-1"]\nprofile = "lukewarm"\n', "crates.C-1.profile", "is not in"),
        ('[mqtt]\nshared_group = "a/b"\n', "mqtt.shared_group", "must be 1-64"),
        ('[cluster]\nnats = ["nats://n:4222"]\n', "cluster.brokers", "is required"),
        ('[cluster]\nbrokers = ["n:8883"]\nnats = ["n:4222"]\n', "cluster.nats", "is not a NATS URL"),
        ('[cluster]\nbrokers = ["n:8883"]\nnats = ["nats://n:1"]\npartitions = 0\n', "cluster.partitions", "minimum"),
        ('[cluster]\nbrokers = ["n:8883"]\nnats = ["nats://n:4222"]\nack_wait = "5s"\n', "cluster.ack_wait", "2/3"),
        (
            '[cluster]\nbrokers = ["n:8883"]\nnats = ["nats://n:4222"]\nlease_tll = "5s"\n',
            "cluster.lease_tll",
            "not a known setting",
        ),
    ],
)
def test_bad_value_is_refused_naming_file_and_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    """Each bad value raises a ConfigError naming the file, the key and the problem."""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_cluster_table_is_parsed_with_lease_defaults_under_the_hand_over_goal(tmp_path: Path) -> None:
    """[cluster] gives the nodes and partitions; the default leases hand a dead gateway's partitions over in < 10 s."""
    text = '[cluster]\nnats = ["tls://n1:4222", "tls://n2:4222"]\nbrokers = ["n1:8883", "n2:8883"]\npartitions = 8\n'
    cluster = load_config(_write(tmp_path, text)).cluster
    assert cluster is not None
    assert cluster.nats == ("tls://n1:4222", "tls://n2:4222")
    assert cluster.brokers == (("n1", 8883), ("n2", 8883))
    assert cluster.partitions == 8
    assert cluster.lease_ttl_s + cluster.renew_s < 10
    assert cluster.ack_wait_s <= cluster.lease_ttl_s * 2 / 3
    short = load_config(_write(tmp_path, text + 'lease_ttl = "3s"\n')).cluster
    assert short is not None
    assert short.ack_wait_s == 2.0  # the default follows a short TTL down


def test_profiles_default_is_optional_and_means_cryo(tmp_path: Path) -> None:
    """[profiles] default may be left out, as config/gateway.toml says: unlisted crates are then judged as cryo."""
    path = tmp_path / "gw.toml"
    path.write_text(f"[profiles]\nfile = {json.dumps(str(PROFILES))}\n")
    assert load_config(path).default_profile == "cryo"


def test_unset_default_without_a_cryo_profile_is_refused(tmp_path: Path) -> None:
    """With no [profiles] default and no cryo profile to fall back on, start-up names the key and the choices."""
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(PROFILES.read_text().replace("[cryo]", "[cryo_ln2]").replace("[cryo.", "[cryo_ln2."))
    path = tmp_path / "gw.toml"
    path.write_text(f"[profiles]\nfile = {json.dumps(str(profiles))}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == "profiles.default"
    assert "'cryo_ln2'" in caught.value.problem


def test_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    """`coldchain gateway` with a bad value prints one line naming file, key and problem, and exits 2."""
    path = _write(tmp_path, "[mqtt]\nport = 0\n")
    result = run_gateway(path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"coldchain gateway: {path}: mqtt.port: 0 is below the minimum 1"]


def test_unreachable_database_exits_1_naming_the_url(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """No InfluxDB at the URL: exit 1 with a line naming the URL and what to check."""
    url = f"http://127.0.0.1:{free_port()}"
    path = gateway_config(tmp_path, mosquitto, url, "coldchain", influx_extra='startup_wait = "0.5s"')
    result = run_gateway(path)
    assert result.returncode == 1
    assert f"InfluxDB at {url} cannot be reached" in result.stderr
    assert "check [influxdb] url" in result.stderr


@pytest.mark.integration
def test_wrong_credentials_exit_1_naming_the_user(
    tmp_path: Path, mosquitto: Mosquitto, make_influxdb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An influxd with authentication refuses a wrong password: exit 1 naming the user and the keys to check."""
    monkeypatch.setenv("INFLUXDB_HTTP_AUTH_ENABLED", "true")
    server: InfluxDB = make_influxdb()
    create = urllib.parse.urlencode({"q": "CREATE USER admin WITH PASSWORD 'right' WITH ALL PRIVILEGES"})
    urllib.request.urlopen(urllib.request.Request(f"{server.url}/query", data=create.encode()), timeout=10).close()
    (tmp_path / "pw").write_text("wrong\n")
    path = gateway_config(
        tmp_path, mosquitto, server, "coldchain", influx_extra='username = "admin"\npassword_file = "pw"'
    )
    result = run_gateway(path)
    assert result.returncode == 1
    assert f"InfluxDB at {server.url} refused user 'admin'" in result.stderr
    assert "check [influxdb] username and password_file" in result.stderr


def test_unusable_state_file_exits_1_naming_it(tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB) -> None:
    """A state file that cannot be opened (its directory is a file) stops the start-up with one clear line."""
    (tmp_path / "blocker").write_text("")
    path = gateway_config(tmp_path, mosquitto, influxdb, "coldchain", '[state]\nfile = "blocker/state.sqlite"\n')
    result = run_gateway(path)
    assert result.returncode == 1
    assert f"cannot open the state file {tmp_path / 'blocker' / 'state.sqlite'}" in result.stderr
    assert "check [state] file" in result.stderr
