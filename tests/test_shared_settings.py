"""The shared connection settings: one broker schema, one InfluxDB schema, one secret-file reader."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from gateway_helpers import ROOT

from adapters.secrets import SecretError, read_secret
from board.config import load_config as board_config
from coldchain.errors import ConfigError
from coldchain.settings.broker import BrokerSchema, BrokerSettings, parse_broker
from coldchain.settings.influx import InfluxSchema, InfluxSettings, parse_influx
from coldchain.settings.table import Table
from edge.config import load_config as agent_config
from gateway.config import load_config as gateway_config


def test_every_program_reads_broker_and_influxdb_through_the_shared_schemas(tmp_path: Path) -> None:
    """The shipped agent, gateway and board configs give the core's settings types."""
    for name in ("agent.toml", "gateway.toml", "board.toml", "profiles.toml"):
        shutil.copy(ROOT / "config" / name, tmp_path / name)
    agent = agent_config(tmp_path / "agent.toml")
    gateway = gateway_config(tmp_path / "gateway.toml")
    board = board_config(tmp_path / "board.toml")
    assert [isinstance(c.mqtt, BrokerSettings) for c in (agent, gateway, board)] == [True, True, True]
    assert [isinstance(c.influxdb, InfluxSettings) for c in (gateway, board)] == [True, True]


def test_broker_password_without_login_names_file_and_key() -> None:
    """A password file without a username is refused, naming the file and the key."""
    table = Table({"password_file": "pw"}, "a.toml", "mqtt")
    with pytest.raises(ConfigError, match=r"a\.toml: mqtt\.password_file: is set but username is missing"):
        parse_broker(table, Path(), BrokerSchema(), BrokerSettings)


def test_influx_v2_without_token_names_the_key() -> None:
    """``api = "v2"`` without a token file is refused, naming the missing key."""
    table = Table({"api": "v2", "org": "o", "bucket": "b"}, "g.toml", "influxdb")
    with pytest.raises(ConfigError, match=r"influxdb\.token_file: is required when api"):
        parse_influx(table, Path(), InfluxSchema(), InfluxSettings)


def test_secret_is_the_first_line_stripped(tmp_path: Path) -> None:
    """A secret file's first line, without surrounding blanks, is the secret."""
    path = tmp_path / "pw"
    path.write_text("  s3cret \nsecond line\n")
    path.chmod(0o600)
    assert read_secret(path) == "s3cret"


def test_secret_others_can_read_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A secret file other users can read is used, with a warning saying how to fix it."""
    path = tmp_path / "pw"
    path.write_text("s3cret\n")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="adapters.secrets"):
        assert read_secret(path) == "s3cret"
    assert "chmod 600" in caplog.text


def test_empty_secret_file_is_refused_naming_it(tmp_path: Path) -> None:
    """An empty secret file is an error naming the file, not an empty password."""
    path = tmp_path / "pw"
    path.write_text("\n")
    path.chmod(0o600)
    with pytest.raises(SecretError, match=f"{path} is empty"):
        read_secret(path)
