"""The agent's config: the shipped example loads; bad values name file, key and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from coldchain.errors import ConfigError
from edge.__main__ import main
from edge.config import load_config

SERIAL = 'driver = "serial"\nport = "loop://"'
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "agent.toml"

MINIMAL = """[crate]
id = "C-1"
profile = "cryo"
[[probes]]
driver = "serial"
port = "loop://"
sensors = ["probe1"]
"""


def test_shipped_example_loads() -> None:
    """config/agent.toml loads, with its paths relative to its own directory and the cryo profile."""
    config = load_config(EXAMPLE)
    assert config.crate == "C-0042"
    assert config.spool.path == EXAMPLE.parent / "spool.sqlite"
    assert config.profile is not None
    assert config.profile.name == "cryo"
    assert config.probes[0].sensors == ("probe1",)


def test_minimal_config_takes_defaults(tmp_path: Path) -> None:
    """Only crate and one probe are required; the spool sits beside the config."""
    path = tmp_path / "a.toml"
    path.write_text(MINIMAL)
    config = load_config(path)
    assert config.spool.path == tmp_path / "spool.sqlite"
    assert config.spool.max_rows == 120_960
    assert config.mqtt.client_id == "coldchain-agent-C-1"
    assert config.stuck_samples == 360
    assert config.spool.gateway_silent_s == 120.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('id = "C-1"', 'id = "C/1"'), "crate.id"),
        (('id = "C-1"', 'id = "staff.alice"'), "crate.id: 'staff.alice' is a staff or service login"),
        (('port = "loop://"', "port = 7"), "probes[0].port: must be a string"),
        (('sensors = ["probe1"]', "sensors = []"), "probes[0].sensors"),
        (('driver = "serial"', 'driver = "usb"'), "probes[0].driver"),
        (("[[probes]]", "[mqtt]\nprot = 1\n[[probes]]"), "mqtt.prot: is not a known setting"),
        (("[[probes]]", '[profiles]\nfile = "missing.toml"\n[[probes]]'), "profiles.file: cannot read"),
        (('port = "loop://"', 'port = "loop://"\nusb_serial = "X"'), "set exactly one of port"),
        (('port = "loop://"', 'port = "loop://"\ntime_source = "gps"'), "probes[0].time_source"),
        (("[[probes]]", '[alarm]\nwhen = "never"\n[[probes]]'), "alarm.when"),
        (("[[probes]]", "[spool]\nmax_rows = 5\n[[probes]]"), "spool.max_rows: 5 is below the minimum 10"),
        (("[[probes]]", "[spool]\ngateway_silent_s = 0.5\n[[probes]]"), "spool.gateway_silent_s: 0.5 is below"),
        (("[[probes]]", "[spool]\ngateway_silent_s = nan\n[[probes]]"), "spool.gateway_silent_s: must be a finite"),
        (("[[probes]]", '[spool]\ngateway_silent_s = "2m"\n[[probes]]'), "spool.gateway_silent_s: must be a number"),
        (("[[probes]]", '[mqtt]\npassword_file = "p"\n[[probes]]'), "mqtt.password_file: is set but username"),
        ((SERIAL, 'driver = "ds18b20"\ndevices = ["28-1", "28-2"]'), "probes[0].devices: needs one 1-wire id"),
        ((SERIAL, 'driver = "mcp3008"\nchannels = [9]'), "probes[0].channels: needs one channel 0-7"),
        (
            (SERIAL, 'driver = "mcp3008"\nchannels = [0]\nconversion = "steinhart_hart"\ncoefficients = [1.0]'),
            "probes[0].coefficients: needs three numbers",
        ),
        (('sensors = ["probe1"]', "sensors = [" + ", ".join(f'"p{i}"' for i in range(65)) + "]"), "at most 64"),
    ],
)
def test_bad_value_names_key(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    """Each bad value is refused with an error naming the key and the problem."""
    path = tmp_path / "a.toml"
    path.write_text(MINIMAL.replace(*change))
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_config_error_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`coldchain agent` with a bad config prints one line naming the file and key, and exits 2."""
    path = tmp_path / "a.toml"
    path.write_text(
        MINIMAL.replace("cryo", "plasma").replace(
            "[[probes]]", f'[profiles]\nfile = "{EXAMPLE.parent / "profiles.toml"}"\n[[probes]]'
        )
    )
    assert main(["--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "crate.profile" in err[0]
    assert "'plasma' is not a profile" in err[0]
