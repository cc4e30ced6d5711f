"""Where the record lives: the ``[influxdb]`` keys the gateway, the board and the people's commands share.

InfluxDB 1.x (``api = "v1"``: database, retention policy, user and password file) or a server with the
v2 API (``api = "v2"``: org, bucket, token file). A program's own keys (batching waits, chart sizes) stay
with the program: its settings class extends ``InfluxSettings``. Pure parsing: whether a named file
exists, and reading a secret from it, is the adapters' business (``adapters.secrets``).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from coldchain.settings.table import Table

__all__ = [
    "APIS",
    "CONNECTION_KEYS",
    "DEFAULT_DATABASE",
    "DEFAULT_URL",
    "InfluxSchema",
    "InfluxSettings",
    "parse_influx",
    "url_problem",
]

DEFAULT_URL: Final = "http://127.0.0.1:8086"
DEFAULT_DATABASE: Final = "coldchain"
APIS: Final = ("v1", "v2")
# the keys a person's command takes from the gateway's [influxdb] table (cli --config)
CONNECTION_KEYS: Final = (
    "api", "url", "database", "retention_policy", "username", "password_file", "org", "bucket", "token_file"
)  # fmt: skip
FILE_KEYS: Final = ("password_file", "token_file")

S = TypeVar("S", bound="InfluxSettings")


@dataclass(frozen=True, slots=True)
class InfluxSettings:
    """One program's way to the record."""

    api: str = "v1"
    url: str = DEFAULT_URL
    database: str = DEFAULT_DATABASE
    retention_policy: str | None = None
    username: str | None = None
    password_file: Path | None = None
    org: str | None = None
    bucket: str | None = None
    token_file: Path | None = None
    timeout_s: float = 10.0

    @property
    def where(self) -> str:
        """The server and database, for messages."""
        if self.api == "v2":
            return f"InfluxDB (v2 API) at {self.url}, org {self.org}, bucket {self.bucket}"
        return f"InfluxDB at {self.url}, database {self.database}"


@dataclass(frozen=True, slots=True)
class InfluxSchema:
    """Which of the shared keys a program's ``[influxdb]`` table offers, with its bounds."""

    defaults: InfluxSettings = field(default_factory=InfluxSettings)
    v2: bool = True  # api, org, bucket, token_file and retention_policy (without them: InfluxDB 1.x)
    database_identifier: bool = False  # the database name must be an identifier (IDENTIFIER_RULE)
    timeout_min_s: float = 0.1
    timeout_max_s: float | None = None
    password_needs_username: bool = True  # False: a password without a user is ignored (the board, as released)


def url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as an InfluxDB server address, or None."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is no number or out of range
    except ValueError as exc:
        return f"{url!r} is not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname or not url.isprintable() or " " in url:
        return f"{url!r} is not an http:// or https:// URL such as {DEFAULT_URL}"
    return None


def parse_influx(table: Table, base: Path, schema: InfluxSchema, settings_class: type[S], **program: Any) -> S:
    """The shared keys of an ``[influxdb]`` table as a ``settings_class`` holding also the ``program``'s values.

    Relative file names start at ``base`` (the file's directory). Only the keys ``schema`` offers are
    read, so ``Table.finish()`` refuses the others as typos.
    """
    s = schema
    d = s.defaults
    api = table.text("api", d.api, choices=APIS) if s.v2 else d.api
    url = table.text("url", d.url)
    if not url.startswith(("http://", "https://")):
        raise table.error("url", f"{url!r} must start with http:// or https://")
    database = table.identifier("database", d.database) if s.database_identifier else table.text("database", d.database)
    settings = settings_class(
        **program,
        api=api,
        url=url.rstrip("/"),
        database=database,
        retention_policy=table.text("retention_policy", None) if s.v2 else None,
        username=table.text("username", None),
        password_file=table.file_path("password_file", base),
        org=table.text("org", None) if s.v2 else None,
        bucket=table.text("bucket", None) if s.v2 else None,
        token_file=table.file_path("token_file", base) if s.v2 else None,
        timeout_s=table.number("timeout_s", d.timeout_s, minimum=s.timeout_min_s, maximum=s.timeout_max_s),
    )
    if api == "v2":
        for key in ("org", "bucket", "token_file"):
            if getattr(settings, key) is None:
                raise table.error(key, 'is required when api = "v2"')
    if s.password_needs_username and settings.password_file is not None and settings.username is None:
        raise table.error("password_file", "is set but username is missing")
    if not settings.database:
        raise table.error("database", "must not be empty")
    return settings
