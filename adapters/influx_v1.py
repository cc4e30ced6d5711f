"""HTTP to an InfluxDB 1.x server: the one connection the writer's ``/write`` and the reader's ``/query`` use.

Standard library only (``http.client``): a 1.x deployment needs no client library.
"""

from __future__ import annotations

import base64
import http.client
import urllib.parse

from adapters.influx_errors import InfluxError, connection_error, http_error
from adapters.secrets import read_secret
from coldchain.settings.influx import InfluxSettings

__all__ = ["V1Http"]


class V1Http:
    """Requests with the settings' login and timeout; one keep-alive connection, or a fresh one per request.

    ``keep_alive``: the gateway's writer sends thousands of writes on one connection (one thread); the reader
    is shared by the board's concurrent requests (each in a thread of its own), so each request opens its own.
    """

    def __init__(self, settings: InfluxSettings, *, keep_alive: bool) -> None:
        """Reads the password from ``password_file`` (SecretError when it cannot)."""
        self.settings = settings
        self.url = settings.url
        self._keep_alive = keep_alive
        parts = urllib.parse.urlsplit(settings.url)
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc
        self._prefix = parts.path.rstrip("/")
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if settings.username is not None:
            password = read_secret(settings.password_file) if settings.password_file is not None else ""
            token = base64.b64encode(f"{settings.username}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._conn: http.client.HTTPConnection | None = None

    @property
    def who(self) -> str:
        """Whom the server refuses when it refuses our login, for messages."""
        return f"user {self.settings.username!r}" if self.settings.username else "anonymous access"

    def _new_connection(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return kind(self._netloc, timeout=self.settings.timeout_s)

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = self._new_connection()
        return self._conn

    def request(self, method: str, endpoint: str, params: dict[str, str], body: bytes | None = None) -> tuple[int, str]:
        """The status and text of the answer to ``method`` ``endpoint`` (``/write``, ``/query``, ``/ping``).

        InfluxUnreachableError (or its InfluxTimeoutError) when no answer came.
        """
        path = f"{self._prefix}{endpoint}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        if not self._keep_alive:
            conn = self._new_connection()  # never shared: other threads may be asking at the same time
            try:
                return self._exchange(conn, method, path, body)
            except (OSError, http.client.HTTPException) as exc:
                raise connection_error(self.url, exc, self.settings.timeout_s) from exc
            finally:
                conn.close()
        # a keep-alive connection the server closed fails on first use: one fresh retry is not a real failure
        for attempt in (1, 2):
            try:
                return self._exchange(self._connection(), method, path, body)
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == 2:
                    raise connection_error(self.url, exc, self.settings.timeout_s) from exc
        raise AssertionError("unreachable")

    def _exchange(
        self, conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None
    ) -> tuple[int, str]:
        conn.request(method, path, body=body, headers=self._headers)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")

    def failure(self, status: int, text: str, request: str) -> InfluxError:
        """The classified error of an answer with HTTP ``status`` to ``request``."""
        return http_error(self.url, status, text, request, self.who)

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
