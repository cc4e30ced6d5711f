"""Writing line protocol to InfluxDB: 1.x through ``/write``, v2-API servers through influxdb-client.

The one writer of every program (the gateway's points, a release decision of ``coldchain release`` or
the board), opened from the core's ``InfluxSettings``. Both writers have the same tiny contract,
``check(wait_s)`` once at start-up and a synchronous ``write(body)``, and classify every failure once:

- ``PointsRefusedError``: the server refused (some of) the points for good (HTTP 400,
  413, 422): the caller splits the batch to find and quarantine the bad ones;
- ``RetryableStoreError``: unreachable, overloaded, database missing, credentials
  refused at run time: keep the data, back off, try again;
- ``StoreError`` from ``check()``: start-up cannot continue (names the URL and what to check).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import time
import urllib.parse
from typing import Any, Protocol

from adapters.secrets import read_secret
from coldchain.errors import RetryableStoreError, StoreError
from coldchain.influx_settings import InfluxSettings

__all__ = ["PointsRefusedError", "V1Writer", "V2Writer", "Writer", "open_writer"]

log = logging.getLogger(__name__)


class PointsRefusedError(StoreError):
    """The server refused points of this body for good; the rest may or may not be stored."""


class Writer(Protocol):
    """Where batches of line protocol go."""

    url: str

    def check(self, wait_s: float) -> None:
        """Verify reachability (waiting up to ``wait_s``), credentials and the database, or StoreError."""

    def write(self, body: bytes) -> None:
        """Store ``body`` (lines, millisecond precision) or raise PointsRefusedError / RetryableStoreError."""

    def close(self) -> None:
        """Release connections."""


class V1Writer:
    """InfluxDB 1.x: POST ``/write?db=..&rp=..&precision=ms`` on one keep-alive connection."""

    def __init__(self, config: InfluxSettings) -> None:
        self.config = config
        self.url = config.url
        parts = urllib.parse.urlsplit(config.url)
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc
        self._prefix = parts.path.rstrip("/")
        params = {"db": config.database, "precision": "ms"}
        if config.retention_policy:
            params["rp"] = config.retention_policy
        self._write_path = f"{self._prefix}/write?{urllib.parse.urlencode(params)}"
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        password = read_secret(config.password_file) if config.password_file is not None else None
        if config.username is not None:
            token = base64.b64encode(f"{config.username}:{password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = kind(self._netloc, timeout=self.config.timeout_s)
        return self._conn

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
        # a keep-alive connection the server closed fails on first use: one fresh retry is not a real failure
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=self._headers)
                response = conn.getresponse()
                text = response.read().decode("utf-8", "replace")
                return response.status, text
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == 2:
                    raise RetryableStoreError(f"InfluxDB at {self.url} unreachable: {exc}") from exc
        raise AssertionError("unreachable")

    def _query(self, statement: str) -> tuple[int, str]:
        params = urllib.parse.urlencode({"q": statement})
        return self._request("POST", f"{self._prefix}/query?{params}")

    def create_database(self) -> None:
        """CREATE DATABASE (a no-op when it exists); never remembered, the database may be dropped later."""
        status, text = self._query(f'CREATE DATABASE "{self.config.database}"')
        if status in (401, 403):
            raise StoreError(self._credentials_problem(status, text))
        if status >= 300 or '"error"' in text:
            raise RetryableStoreError(f"InfluxDB at {self.url} could not create database: {status} {text[:200]}")

    def _credentials_problem(self, status: int, text: str) -> str:
        who = f"user {self.config.username!r}" if self.config.username else "anonymous access"
        return (
            f"InfluxDB at {self.url} refused {who} (HTTP {status}: {_error(text)}): "
            "check [influxdb] username and password_file, and that the user may write the database"
        )

    def check(self, wait_s: float) -> None:
        """Ping (for up to ``wait_s`` while unreachable), then create the database with our credentials."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                status, text = self._request("GET", f"{self._prefix}/ping")
                break
            except RetryableStoreError as exc:
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"InfluxDB at {self.url} is unreachable ({exc.__cause__}): check [influxdb] url "
                        "and that influxd is running and listening there"
                    ) from None
                time.sleep(0.5)
        if status != 204:
            raise StoreError(f"{self.url}/ping answered HTTP {status}: is this an InfluxDB 1.x server? ({text[:120]})")
        self.create_database()

    def write(self, body: bytes) -> None:
        """POST the lines; creates the database and retries once when it was dropped."""
        status, text = self._request("POST", self._write_path, body)
        if status == 404 and "database not found" in text:
            self.create_database()
            status, text = self._request("POST", self._write_path, body)
        _classify(self.url, status, text)

    def close(self) -> None:
        """Close the keep-alive connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _error(text: str) -> str:
    try:
        return str(json.loads(text).get("error") or json.loads(text).get("message") or text)[:300]
    except (ValueError, AttributeError):
        return text[:300]


def _classify(url: str, status: int, text: str) -> None:
    if status < 300:
        return
    if status in (400, 413, 422):
        raise PointsRefusedError(f"InfluxDB at {url} refused points (HTTP {status}): {_error(text)}")
    if status in (401, 403):
        raise RetryableStoreError(f"InfluxDB at {url} refused the credentials (HTTP {status}): {_error(text)}")
    raise RetryableStoreError(f"InfluxDB at {url} failed the write (HTTP {status}): {_error(text)}")


class V2Writer:
    """A v2-API server (InfluxDB 2.x, 3.x, Cloud) through influxdb-client, synchronous writes only."""

    def __init__(self, config: InfluxSettings) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient  # noqa: PLC0415 (v2 deployments only)
        from influxdb_client.client.write_api import SYNCHRONOUS  # noqa: PLC0415

        if config.org is None or config.bucket is None or config.token_file is None:
            # load_config refuses api = "v2" without them, naming the key: only a caller's bug gets here
            raise ValueError("a v2 writer needs [influxdb] org, bucket and token_file")
        self.config = config
        self.url = config.url
        self._org, self._bucket = config.org, config.bucket
        token = read_secret(config.token_file)
        self._client = InfluxDBClient(url=config.url, token=token, org=self._org, timeout=int(config.timeout_s * 1000))
        # SYNCHRONOUS: the batching mode acknowledges before the server does and drops on close
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def check(self, wait_s: float) -> None:
        """Ask for the bucket with our token (for up to ``wait_s`` while unreachable): proves the URL, the token
        and the bucket's existence."""
        from influxdb_client.rest import ApiException  # noqa: PLC0415

        deadline = time.monotonic() + wait_s
        while True:
            try:
                # influxdb-client leaves this method unannotated
                bucket = self._client.buckets_api().find_bucket_by_name(self._bucket)  # type: ignore[no-untyped-call]
                break
            except ApiException as exc:
                if exc.status in (401, 403):
                    raise StoreError(
                        f"InfluxDB at {self.url} refused the token (HTTP {exc.status}): "
                        "check [influxdb] token_file and that the token may write the bucket"
                    ) from None
                raise StoreError(f"InfluxDB at {self.url} answered HTTP {exc.status}: {exc.reason}") from None
            except Exception as exc:
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"InfluxDB at {self.url} is unreachable ({exc}): check [influxdb] url and that the server runs"
                    ) from None
                time.sleep(0.5)
        if bucket is None:
            raise StoreError(f"InfluxDB at {self.url} has no bucket {self._bucket!r}: check [influxdb] bucket")

    def write(self, body: bytes) -> None:
        """Write the lines with millisecond precision."""
        from influxdb_client.domain.write_precision import WritePrecision  # noqa: PLC0415
        from influxdb_client.rest import ApiException  # noqa: PLC0415

        try:
            # write_precision is annotated with the class, whose members are its plain str values ("ms")
            precision: Any = WritePrecision.MS
            self._write_api.write(bucket=self._bucket, org=self._org, record=body, write_precision=precision)
        except ApiException as exc:
            _classify(self.url, int(exc.status or 0) or 599, str(exc.body or exc.reason))
        except Exception as exc:
            raise RetryableStoreError(f"InfluxDB at {self.url} unreachable: {exc}") from exc

    def close(self) -> None:
        """Close the client."""
        self._client.close()  # type: ignore[no-untyped-call]  # influxdb-client leaves it unannotated


def open_writer(config: InfluxSettings) -> Writer:
    """The writer the settings name."""
    return V2Writer(config) if config.api == "v2" else V1Writer(config)
