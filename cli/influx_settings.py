"""Where the record lives: InfluxDB settings from the gateway's ``[influxdb]`` table and the command line.

Keys are named as in the gateway's table (api, url, database, retention_policy,
username, password_file, org, bucket, token_file), so ``--config`` can point at the
gateway's file; only those keys are read, the rest belongs to the gateway.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

from coldchain.errors import ConfigError
from coldchain.settings.argtypes import text
from coldchain.settings.influx import APIS, CONNECTION_KEYS, DEFAULT_DATABASE, DEFAULT_URL, InfluxSettings, url_problem
from coldchain.settings.table import load_toml

__all__ = ["InfluxSettings", "add_influx_arguments", "settings_from_args"]

# Keys of the gateway's and board's [influxdb] tables that only those programs use (their example configs
# document each; a test keeps this list complete). Any other key in --config's [influxdb] is a typo.
PROGRAM_KEYS = frozenset(
    {"timeout_s", "startup_wait", "chart_hours", "max_points", "history_days", "history_refresh_s"}
)


def add_influx_arguments(parser: argparse.ArgumentParser) -> None:
    """The InfluxDB options every command that reads the record shares."""
    group = parser.add_argument_group("InfluxDB (command line overrides --config)")
    group.add_argument("--config", type=Path, help="the gateway's TOML: its [influxdb] table is used")
    group.add_argument("--api", choices=("v1", "v2"), help="v1: InfluxQL (InfluxDB 1.x, default); v2: Flux")
    group.add_argument("--influx-url", dest="url", type=text, help="server URL (default http://127.0.0.1:8086)")
    group.add_argument("--database", type=text, help="v1 database (default coldchain)")
    group.add_argument("--retention-policy", type=text, help="v1 retention policy (default: the database's default)")
    group.add_argument("--username", type=text, help="v1 user")
    group.add_argument("--password-file", type=Path, help="v1 password, first line of this file")
    group.add_argument("--org", type=text, help="v2 organisation")
    group.add_argument("--bucket", type=text, help="v2 bucket")
    group.add_argument("--token-file", type=Path, help="v2 API token, first line of this file")


def _from_file(path: Path) -> InfluxSettings:
    table = load_toml(path).table("influxdb", required=True)
    # Only the connection keys are read: batching and retry settings belong to the gateway.
    settings = InfluxSettings(
        api=table.text("api", "v1", choices=APIS),
        url=table.text("url", DEFAULT_URL),
        database=table.text("database", DEFAULT_DATABASE),
        retention_policy=table.text("retention_policy", None),
        username=table.text("username", None),
        password_file=table.file_path("password_file", path.parent),
        org=table.text("org", None),
        bucket=table.text("bucket", None),
        token_file=table.file_path("token_file", path.parent),
    )
    for key in table.data:
        if key not in CONNECTION_KEYS and key not in PROGRAM_KEYS:
            raise table.error(key, "is not a known setting (typo?)")
    return settings


def _where(args: argparse.Namespace, name: str, flag: str) -> tuple[str, str]:
    """The source and key to name in an error about setting ``name``: the option, else --config's key."""
    if getattr(args, name) is not None or args.config is None:
        return "command line", flag
    return str(args.config), f"influxdb.{name}"


def settings_from_args(args: argparse.Namespace) -> InfluxSettings:
    """Settings from ``--config`` (if any), overridden by the options given; ConfigError when unusable."""
    settings = _from_file(args.config) if args.config else InfluxSettings()
    overrides = {n: getattr(args, n) for n in CONNECTION_KEYS if getattr(args, n) is not None}
    settings = replace(settings, **overrides)
    if (problem := url_problem(settings.url)) is not None:
        raise ConfigError(*_where(args, "url", "--influx-url"), problem)
    if settings.api == "v2":
        for name in ("org", "bucket", "token_file"):
            if getattr(settings, name) is None:
                flag = "--" + name.replace("_", "-")
                raise ConfigError("command line", flag, f"the v2 API needs {flag} (or [influxdb] {name} of --config)")
    for name in ("password_file", "token_file"):
        path: Path | None = getattr(settings, name)
        if path is not None and not (path.is_file() and os.access(path, os.R_OK)):
            problem = "no such file" if not path.exists() else "not a readable file"
            raise ConfigError(*_where(args, name, "--" + name.replace("_", "-")), f"{path}: {problem}")
    return settings
