"""Config readers are total: any TOML document, one change away from a shipped config, gives a config or a
ConfigError naming the problem, never another exception (which a command would show as a traceback)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import re
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gateway_helpers import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from board.config import load_config as board_config
from cli.influx_settings import settings_from_args as influx_settings
from cli.mqtt_read import broker_settings
from coldchain.errors import ConfigError
from coldchain.profiles import load_profiles
from edge.config import load_config as agent_config
from firmware_sim.scenario import read_scenario
from gateway.config import load_config as gateway_config

SHIPPED = ROOT / "config"


def _toml(value: Any) -> str:
    """``value`` as an inline TOML value (every table inline, so one writer serves any document)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{_string(k)} = {_toml(v)}" for k, v in value.items()) + "}"


def _string(text: str) -> str:
    """A TOML basic string: JSON's escapes of control characters are TOML's, DEL needs one too."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _document(data: dict[str, Any]) -> str:
    return "".join(f"{_string(key)} = {_toml(value)}\n" for key, value in data.items())


_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_scalars = st.one_of(
    _text,
    st.sampled_from(["", "x\x00y", "../../etc/passwd", "v2", "cryo", "http://", "1h", "-5s", "GPIO99", "/dev/null"]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, -1, 1, 65536, 2**53]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(),
)
# the values a reader most easily lets through: TOML's nan and inf, a NUL no path may hold, edge numbers
_nasty = st.sampled_from(
    [math.nan, math.inf, -math.inf, "x\x00y", "", -1, 0, 0.0, -0.5, 2**63 - 1, 10**400, [math.nan], [10**400], {}]
)
_values = st.one_of(
    _nasty,
    st.recursive(
        _scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3), max_leaves=6
    ),
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path (and list index) in the document."""
    if isinstance(data, dict):
        return [p for key, value in data.items() for p in [(*prefix, key), *_paths(value, (*prefix, key))]]
    if isinstance(data, list):
        return [p for i, value in enumerate(data) for p in [(*prefix, i), *_paths(value, (*prefix, i))]]
    return []


@st.composite
def _mutated(draw: st.DrawFn, base: dict[str, Any], vocabulary: list[str]) -> dict[str, Any]:
    """``base`` with one value replaced, one key removed or one key (mostly a documented one) added somewhere."""
    data = json.loads(json.dumps(base, default=str))  # a deep copy (dates are not in the shipped configs)
    path = draw(st.sampled_from(_paths(data)))
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "remove" and isinstance(parent, dict):
        del parent[path[-1]]
    elif action == "add" and isinstance(parent[path[-1]], dict):
        parent[path[-1]][draw(st.sampled_from(vocabulary) | _text)] = draw(_values)
    else:
        parent[path[-1]] = draw(_values)
    return data


def _base(name: str) -> tuple[dict[str, Any], list[str]]:
    """The shipped file's document, and every key it documents (commented-out ones too)."""
    text = (SHIPPED / name).read_text()
    return tomllib.loads(text), sorted(set(re.findall(r"^#?\s*([a-z_]+)\s*=", text, flags=re.M)))


def _usable(value: object, where: str = "config") -> None:
    """An accepted config holds no value its program would trip over: every number finite, no NUL in a path."""
    if isinstance(value, float):
        assert math.isfinite(value), where
    elif isinstance(value, Path):
        assert "\0" not in str(value), where
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            _usable(getattr(value, field.name), f"{where}.{field.name}")
    elif isinstance(value, dict):
        for key, item in value.items():
            _usable(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _usable(item, f"{where}[{i}]")


def _total(load: Callable[[Path], object], path: Path, data: dict[str, Any]) -> None:
    path.write_text(_document(data))
    try:
        loaded = load(path)
    except ConfigError:
        return
    _usable(loaded)


def _args(config: Path) -> argparse.Namespace:
    names = ("host", "port", "username", "password_file", "tls", "ca_file", "cert_file", "key_file")
    influx = ("api", "url", "database", "retention_policy", "org", "bucket", "token_file")
    return argparse.Namespace(config=config, **dict.fromkeys(names + influx))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the shipped profiles beside the configs, as the configs expect."""
    path = tmp_path_factory.mktemp("config-total")
    shutil.copy(SHIPPED / "profiles.toml", path / "profiles.toml")
    return path


READERS: dict[str, tuple[str, Callable[[Path], object]]] = {
    "agent": ("agent.toml", agent_config),
    "gateway": ("gateway.toml", gateway_config),
    "board": ("board.toml", board_config),
    "profiles": ("profiles.toml", load_profiles),
    "scenario": ("scenarios/cryo-tipped.toml", read_scenario),
    "people's [mqtt]": ("gateway.toml", lambda path: broker_settings(_args(path))),
    "people's [influxdb]": ("gateway.toml", lambda path: influx_settings(_args(path))),
}


@pytest.mark.parametrize("reader", list(READERS))
def test_config_readers_are_total(folder: Path, reader: str) -> None:
    """Any one-change variant of a shipped file loads or is refused with a ConfigError."""
    name, load = READERS[reader]
    base, vocabulary = _base(name)
    # about three draws per key path a run (each run draws afresh, so coverage adds up across runs), at most 300
    examples = min(300, max(100, 3 * len(_paths(base))))

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(_mutated(base, vocabulary))
    def check(data: dict[str, Any]) -> None:
        _total(load, folder / "candidate.toml", data)

    check()
