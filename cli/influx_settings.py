"""Where the record lives: InfluxDB settings from the gateway's ``[influxdb]`` table and the command line.

Keys are named as in the gateway's table (api, url, database, retention_policy,
username, password_file, org, bucket, token_file), so ``--config`` can point at the
gateway's (or the board's) file: the core reads them (``coldchain.settings.influx``) as it
does for those programs; their own keys are theirs.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

from adapters.influx_errors import InfluxAuthError, InfluxError, InfluxNotFoundError, InfluxUnreachableError
from coldchain.errors import ConfigError
from coldchain.settings.argtypes import text
from coldchain.settings.influx import CONNECTION_KEYS, InfluxSchema, InfluxSettings, parse_influx, url_problem
from coldchain.settings.table import load_toml

__all__ = ["READ_TIMEOUT_S", "add_influx_arguments", "influx_problem", "settings_from_args"]

READ_TIMEOUT_S = 30.0  # a report's query reads six hours of a crate's record: longer than the gateway's writes
_SCHEMA = InfluxSchema(defaults=InfluxSettings(timeout_s=READ_TIMEOUT_S), password_needs_username=False)

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
    # the core's reading of the shared keys; a password without a user is ignored, as by the board that wrote it
    settings = parse_influx(table, path.parent, _SCHEMA, InfluxSettings)
    for key in table.data:
        if key not in CONNECTION_KEYS and key not in PROGRAM_KEYS:
            raise table.error(key, "is not a known setting (typo?)")
    # timeout_s is the gateway's for its writes, the board's for its chart: a report's reads take their own
    return replace(settings, timeout_s=READ_TIMEOUT_S)


def _where(args: argparse.Namespace, name: str, flag: str) -> tuple[str, str]:
    """The source and key to name in an error about setting ``name``: the option, else --config's key."""
    if getattr(args, name) is not None or args.config is None:
        return "command line", flag
    return str(args.config), f"influxdb.{name}"


def settings_from_args(args: argparse.Namespace) -> InfluxSettings:
    """Settings from ``--config`` (if any), overridden by the options given; ConfigError when unusable."""
    settings = _from_file(args.config) if args.config else InfluxSettings(timeout_s=READ_TIMEOUT_S)
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


def influx_problem(exc: InfluxError, settings: InfluxSettings) -> str:
    """``exc`` and what to check: the options (or --config's keys) that set what failed."""
    v2 = settings.api == "v2"
    if isinstance(exc, InfluxAuthError):
        if v2:
            return f"{exc}: check --token-file (or [influxdb] token_file of --config) and that it may read the bucket"
        return f"{exc}: check --username/--password-file (or [influxdb] username/password_file of --config)"
    if isinstance(exc, InfluxNotFoundError):
        if v2:
            return f"{exc}: check --org and --bucket, and that the server speaks the v2 API (1.x servers: --api v1)"
        return f"{exc}: check --database (or [influxdb] database of --config); a v2-only server? use --api v2"
    if isinstance(exc, InfluxUnreachableError):
        return f"{exc}: check that influxd runs and that --influx-url (or [influxdb] url of --config) names it"
    return str(exc)
