"""A server with the v2 API (InfluxDB 2.x, 3.x, Cloud) through influxdb-client: the client the writer and the
reader open from the settings, and its exceptions in the shared classification (``adapters.influx_errors``).

Only this module and the v2 writer and reader load influxdb-client; 1.x deployments never import it.
"""

from __future__ import annotations

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.rest import ApiException

from adapters.influx_errors import InfluxError, connection_error, http_error
from adapters.secrets import read_secret
from coldchain.settings.influx import InfluxSettings

__all__ = ["open_client", "v2_error"]


def open_client(settings: InfluxSettings) -> InfluxDBClient:
    """A client with the token of ``token_file``, the org and the timeout (SecretError when no token is read)."""
    if settings.org is None or settings.bucket is None or settings.token_file is None:
        # the settings' parsers refuse api = "v2" without them, naming the key: only a caller's bug gets here
        raise ValueError("the v2 API needs [influxdb] org, bucket and token_file")
    token = read_secret(settings.token_file)
    return InfluxDBClient(url=settings.url, token=token, org=settings.org, timeout=int(settings.timeout_s * 1000))


def _timed_out(exc: BaseException) -> bool:
    # urllib3 wraps a timeout in MaxRetryError when its retries are used up
    return isinstance(exc, urllib3.exceptions.TimeoutError) or isinstance(
        getattr(exc, "reason", None), urllib3.exceptions.TimeoutError
    )


def v2_error(settings: InfluxSettings, exc: Exception, request: str) -> InfluxError:
    """What influxdb-client's ``exc`` (from ``request``) means: an HTTP answer, or none."""
    if isinstance(exc, ApiException):
        text = str(exc.body or exc.reason or "")
        return http_error(settings.url, int(exc.status or 0) or 599, text, request, "the token")
    return connection_error(settings.url, exc, settings.timeout_s, timed_out=_timed_out(exc))
