"""Typed access to parsed TOML, with errors that name the file, the key and the problem.

Every key a program reads is remembered, so ``Table.finish()`` can refuse typos.
``load_toml`` is the core's one file read: configuration at start-up, so every
program reports an unreadable or malformed file in the same words.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from coldchain.errors import ConfigError
from coldchain.topics import IDENTIFIER_RULE, valid_identifier

__all__ = ["REQUIRED", "Table"]

T = TypeVar("T")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class Table:
    """One TOML table of a named source, read key by key."""

    def __init__(self, data: Mapping[str, Any], source: str, path: str = "") -> None:
        self._data = data
        self.source = source
        self.path = path
        self._read: set[str] = set()
        self._children: list[Table] = []

    @property
    def data(self) -> Mapping[str, Any]:
        """The parsed table as it is."""
        return self._data

    def key(self, name: str) -> str:
        """Dotted name of ``name`` within the file, for error messages."""
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, problem: str) -> ConfigError:
        """A ConfigError about key ``name`` of this table."""
        return ConfigError(self.source, self.key(name), problem)

    def __contains__(self, name: str) -> bool:
        return name in self._data

    def keys(self) -> Iterable[str]:
        """The keys present in this table."""
        return self._data.keys()

    def _get(self, name: str, default: Any, kinds: tuple[type, ...], label: str) -> Any:
        self._read.add(name)
        if name not in self._data:
            if default is REQUIRED:
                raise self.error(name, "is required but missing")
            return default
        value = self._data[name]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.error(name, f"must be {label}, got {type(value).__name__} {value!r}")
        return value

    def text(self, name: str, default: Any = REQUIRED, choices: Iterable[str] | None = None) -> Any:
        """A string value, optionally one of ``choices``."""
        value = self._get(name, default, (str,), "a string")
        if choices is not None and value is not None:
            allowed = sorted(choices)
            if value not in allowed:
                raise self.error(name, f"{value!r} is not one of {allowed}")
        return value

    def identifier(self, name: str, default: Any = REQUIRED) -> Any:
        """A crate/sensor/rule id (``IDENTIFIER_RULE``)."""
        value = self.text(name, default)
        if value is not None and not valid_identifier(value):
            raise self.error(name, f"{value!r} must be {IDENTIFIER_RULE}")
        return value

    def integer(
        self, name: str, default: Any = REQUIRED, minimum: int | None = None, maximum: int | None = None
    ) -> Any:
        """An integer within [minimum, maximum]."""
        value = self._get(name, default, (int,), "an integer")
        self._bounds(name, value, minimum, maximum)
        return value

    def number(
        self, name: str, default: Any = REQUIRED, minimum: float | None = None, maximum: float | None = None
    ) -> Any:
        """A number (integers accepted) within [minimum, maximum], as float."""
        value = self._get(name, default, (int, float), "a number")
        if value is None:
            return None
        number = self._finite(name, value)
        self._bounds(name, value, minimum, maximum)
        return number

    def duration(
        self, name: str, default: Any = REQUIRED, minimum: float | None = None, maximum: float | None = None
    ) -> Any:
        """A duration in seconds: a number of seconds, or a string like ``"90s"``, ``"15m"``, ``"72h"``, ``"3d"``."""
        value = self._get(name, default, (int, float, str), "a duration like 90, '90s', '15m', '72h' or '3d'")
        if value is None or isinstance(value, (int, float)):
            if value is not None:
                self._finite(name, value)  # an integer too large for a float, nan, inf
            seconds = value
        else:
            number, unit = value[:-1].strip(), value[-1:]
            try:
                seconds = float(number) * _DURATION_UNITS[unit]
            except (KeyError, ValueError):
                raise self.error(name, f"{value!r} is not a duration like '90s', '15m', '72h' or '3d'") from None
        if seconds is not None:
            if not math.isfinite(seconds):
                raise self.error(name, f"{value!r} is not a finite duration")
            self._bounds(name, seconds, minimum, maximum)
            seconds = float(seconds)
        return seconds

    def flag(self, name: str, default: Any = REQUIRED) -> Any:
        """A true/false value."""
        return self._get(name, default, (bool,), "true or false")

    def text_list(self, name: str, default: Any = REQUIRED) -> Any:
        """A list of strings."""
        value = self._get(name, default, (list,), "a list of strings")
        if value is not None and not all(isinstance(v, str) for v in value):
            raise self.error(name, "must be a list of strings")
        return value

    def integer_list(self, name: str, default: Any = REQUIRED) -> Any:
        """A list of integers."""
        value = self._get(name, default, (list,), "a list of integers")
        if value is not None and not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise self.error(name, f"must be a list of integers, got {value!r}")
        return value

    def number_list(self, name: str, default: Any = REQUIRED) -> Any:
        """A list of numbers (integers accepted), as floats."""
        value = self._get(name, default, (list,), "a list of numbers")
        if value is None:
            return None
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise self.error(name, f"must be a list of numbers, got {value!r}")
        return [self._finite(name, v) for v in value]

    def file_path(self, name: str, base: Path, default: str | None = None) -> Path | None:
        """A path; a relative one is taken relative to ``base`` (the config file's directory)."""
        raw = self.text(name, default)
        if raw is None:
            return None
        if not raw:
            raise self.error(name, "must not be empty")
        if "\0" in raw:  # no file system takes it: refused here rather than by the first call that opens it
            raise self.error(name, "must not contain a NUL character")
        path = Path(raw)
        return path if path.is_absolute() else base / path

    def table(self, name: str, required: bool = False) -> Table:
        """A sub-table (empty when absent and not required)."""
        raw = self._get(name, REQUIRED if required else {}, (dict,), "a table")
        child = Table(raw, self.source, self.key(name))
        self._children.append(child)
        return child

    def tables(self, name: str) -> list[Table]:
        """An array of tables (``[[name]]``), empty when absent."""
        raw = self._get(name, [], (list,), "an array of tables")
        out = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise ConfigError(self.source, f"{self.key(name)}[{i}]", "must be a table")
            child = Table(item, self.source, f"{self.key(name)}[{i}]")
            self._children.append(child)
            out.append(child)
        return out

    def finish(self) -> None:
        """Refuse keys nobody read (usually typos), here and in every sub-table read."""
        for name in self._data:
            if name not in self._read:
                raise self.error(name, "is not a known setting (typo?)")
        for child in self._children:
            child.finish()

    def _finite(self, name: str, value: float) -> float:
        """``value`` as a float; TOML has nan and inf and integers of any size, which no setting means."""
        try:
            number = float(value)
        except OverflowError:
            raise self.error(name, f"{value} is too large") from None
        if not math.isfinite(number):  # no bound check would catch nan
            raise self.error(name, f"must be a finite number, got {value}")
        return number

    def _bounds(self, name: str, value: Any, minimum: Any, maximum: Any) -> None:
        if value is None:
            return
        if minimum is not None and value < minimum:
            raise self.error(name, f"{value} is below the minimum {minimum}")
        if maximum is not None and value > maximum:
            raise self.error(name, f"{value} is above the maximum {maximum}")


def load_toml(path: Path) -> Table:
    """Read and parse the TOML file at ``path`` into a Table named after it (ConfigError if it cannot)."""
    if path.exists() and not path.is_dir() and not path.is_file():  # a FIFO or a device would block or never end
        raise ConfigError(str(path), "", "cannot read: not a regular file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "", "not UTF-8 text") from None
    except ValueError:  # a NUL in the name (from a config value): no file system has such a file
        raise ConfigError(repr(str(path)), "", "cannot read: a file name never contains a NUL character") from None
    try:
        return Table(tomllib.loads(text), str(path))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None
