"""Writing line protocol to InfluxDB: 1.x through ``/write``, v2-API servers through influxdb-client.

The one writer of every program (the gateway's points, a release decision of ``coldchain release`` or
the board), opened from the core's ``InfluxSettings``. Both writers have the same tiny contract,
``check(wait_s)`` once at start-up and a synchronous ``write(body)``; the failure the shared
classification (``adapters.influx_errors``) names becomes what the caller does about it:

- ``PointsRefusedError``: the server refused (some of) the points for good (HTTP 400,
  413, 422): the caller splits the batch to find and quarantine the bad ones;
- ``RetryableStoreError``: unreachable, overloaded, database missing, credentials
  refused at run time: keep the data, back off, try again;
- ``StoreError`` from ``check()``: start-up cannot continue (names the URL and what to check).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

from adapters.influx_errors import InfluxAuthError, InfluxError, InfluxRefusedError, InfluxUnreachableError
from adapters.influx_v1 import V1Http
from coldchain.errors import RetryableStoreError, StoreError
from coldchain.settings.influx import InfluxSettings

if TYPE_CHECKING:
    from influxdb_client.client.influxdb_client import InfluxDBClient

__all__ = ["PointsRefusedError", "V1Writer", "V2Writer", "Writer", "open_writer", "write_once"]

POLL_S = 0.5  # between start-up checks while the server does not answer yet


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


def _reaction(error: InfluxError) -> StoreError:
    """What the caller of ``write`` does about ``error``: split the batch, or keep it and retry."""
    if isinstance(error, InfluxRefusedError):
        return PointsRefusedError(str(error))
    return RetryableStoreError(str(error))


class V1Writer:
    """InfluxDB 1.x: POST ``/write?db=..&rp=..&precision=ms`` on one keep-alive connection."""

    def __init__(self, config: InfluxSettings) -> None:
        self.config = config
        self.url = config.url
        self._http = V1Http(config, keep_alive=True)
        self._write_params = {"db": config.database, "precision": "ms"}
        if config.retention_policy:
            self._write_params["rp"] = config.retention_policy

    def _request(
        self, method: str, endpoint: str, params: dict[str, str], body: bytes | None = None
    ) -> tuple[int, str]:
        try:
            return self._http.request(method, endpoint, params, body)
        except InfluxUnreachableError as exc:
            raise RetryableStoreError(str(exc)) from exc

    def create_database(self) -> None:
        """CREATE DATABASE (a no-op when it exists); never remembered, the database may be dropped later."""
        status, text = self._request("POST", "/query", {"q": f'CREATE DATABASE "{self.config.database}"'})
        if status in (401, 403):
            raise StoreError(
                f"{self._http.failure(status, text, 'CREATE DATABASE')}: check [influxdb] username and "
                "password_file, and that the user may write the database"
            )
        if status >= 300 or '"error"' in text:
            raise RetryableStoreError(f"InfluxDB at {self.url} could not create database: {status} {text[:200]}")

    def check(self, wait_s: float) -> None:
        """Ping (for up to ``wait_s`` while unreachable), then create the database with our credentials."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                status, text = self._request("GET", "/ping", {})
                break
            except RetryableStoreError as exc:
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"{exc}: check [influxdb] url and that influxd is running and listening there"
                    ) from None
                time.sleep(POLL_S)
        if status != 204:
            raise StoreError(f"{self.url}/ping answered HTTP {status}: is this an InfluxDB 1.x server? ({text[:120]})")
        self.create_database()

    def write(self, body: bytes) -> None:
        """POST the lines; creates the database and retries once when it was dropped."""
        status, text = self._request("POST", "/write", self._write_params, body)
        if status == 404 and "database not found" in text:
            self.create_database()
            status, text = self._request("POST", "/write", self._write_params, body)
        if status >= 300:
            error = self._http.failure(status, text, "the points")
            raise _reaction(error) from error

    def close(self) -> None:
        """Close the keep-alive connection."""
        self._http.close()


class V2Writer:
    """A v2-API server (InfluxDB 2.x, 3.x, Cloud) through influxdb-client, synchronous writes only."""

    def __init__(self, config: InfluxSettings) -> None:
        from influxdb_client.client.write_api import SYNCHRONOUS  # noqa: PLC0415 (v2 deployments only)

        from adapters.influx_v2 import open_client  # noqa: PLC0415

        self.config = config
        self.url = config.url
        self._org, self._bucket = config.org or "", config.bucket or ""  # open_client refuses them unset
        self._client: InfluxDBClient = open_client(config)
        # SYNCHRONOUS: the batching mode acknowledges before the server does and drops on close
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def check(self, wait_s: float) -> None:
        """Ask for the bucket with our token (for up to ``wait_s`` while unreachable): proves the URL, the token
        and the bucket's existence."""
        from influxdb_client.rest import ApiException  # noqa: PLC0415

        from adapters.influx_v2 import v2_error  # noqa: PLC0415

        deadline = time.monotonic() + wait_s
        while True:
            try:
                # influxdb-client leaves this method unannotated
                bucket = self._client.buckets_api().find_bucket_by_name(self._bucket)  # type: ignore[no-untyped-call]
                break
            except ApiException as exc:
                error = v2_error(self.config, exc, "the bucket lookup")
                if isinstance(error, InfluxAuthError):
                    raise StoreError(
                        f"{error}: check [influxdb] token_file and that the token may write the bucket"
                    ) from None
                raise StoreError(str(error)) from None
            except Exception as exc:
                if time.monotonic() >= deadline:
                    error = v2_error(self.config, exc, "the bucket lookup")
                    raise StoreError(f"{error}: check [influxdb] url and that the server runs") from None
                time.sleep(POLL_S)
        if bucket is None:
            raise StoreError(f"InfluxDB at {self.url} has no bucket {self._bucket!r}: check [influxdb] bucket")

    def write(self, body: bytes) -> None:
        """Write the lines with millisecond precision."""
        from influxdb_client.domain.write_precision import WritePrecision  # noqa: PLC0415

        from adapters.influx_v2 import v2_error  # noqa: PLC0415

        try:
            # write_precision is annotated with the class, whose members are its plain str values ("ms")
            precision: Any = WritePrecision.MS
            self._write_api.write(bucket=self._bucket, org=self._org, record=body, write_precision=precision)
        except Exception as exc:
            error = v2_error(self.config, exc, "the points")
            raise _reaction(error) from error

    def close(self) -> None:
        """Close the client."""
        self._client.close()  # type: ignore[no-untyped-call]  # influxdb-client leaves it unannotated


def open_writer(config: InfluxSettings) -> Writer:
    """The writer the settings name."""
    return V2Writer(config) if config.api == "v2" else V1Writer(config)


def write_once(config: InfluxSettings, body: bytes) -> None:
    """Store ``body`` on a connection of its own (a person's decision, not a stream): open, write, close."""
    writer = open_writer(config)
    try:
        writer.write(body)
    finally:
        writer.close()
