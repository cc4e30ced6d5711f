"""What went wrong with an InfluxDB request, classified once for both APIs and for reading and writing.

The kinds a caller reacts to differently: the server refused our credentials (``InfluxAuthError``),
refused the request itself for good (``InfluxRefusedError``: bad points, a query it rejects), has not
what the settings name (``InfluxNotFoundError``: database, bucket, org, or the API), gave no answer in
time (``InfluxTimeoutError``) or none at all (``InfluxUnreachableError``); any other HTTP failure is a
plain ``InfluxError``. Messages name the server and what it said; what the person should
check (a config key, a command-line option) is added by the program that knows where its settings came
from.
"""

from __future__ import annotations

import json

__all__ = [
    "InfluxAuthError",
    "InfluxError",
    "InfluxNotFoundError",
    "InfluxRefusedError",
    "InfluxTimeoutError",
    "InfluxUnreachableError",
    "connection_error",
    "error_detail",
    "http_error",
]

AUTH_STATUSES = (401, 403)
REFUSED_STATUSES = (400, 413, 422)  # the same request would be refused again: retrying cannot help


class InfluxError(Exception):
    """InfluxDB did not do what was asked; ``status`` is the HTTP status when it answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class InfluxAuthError(InfluxError):
    """The server refused the user, password or token (HTTP 401, 403)."""


class InfluxRefusedError(InfluxError):
    """The server refused the request for good: points it will not store, a query it rejects."""


class InfluxNotFoundError(InfluxError):
    """What the settings name is not there: the database, bucket or org, or the API itself (HTTP 404)."""


class InfluxUnreachableError(InfluxError):
    """No answer: nothing listens at the URL, the name does not resolve, the connection broke."""


class InfluxTimeoutError(InfluxUnreachableError):
    """No answer within the settings' ``timeout_s``."""


def error_detail(text: str) -> str:
    """The error an InfluxDB answer body states (its JSON ``error`` or ``message``), else the body's start."""
    try:
        body = json.loads(text)
        return str(body.get("error") or body.get("message") or text)[:300]
    except (ValueError, AttributeError):
        return text[:300]


def http_error(url: str, status: int, text: str, request: str, who: str) -> InfluxError:
    """The error of an HTTP ``status`` answer to ``request`` ("the write", "the query") sent as ``who``."""
    detail = error_detail(text)
    if status in AUTH_STATUSES:
        return InfluxAuthError(f"InfluxDB at {url} refused {who} (HTTP {status}: {detail})", status)
    if status in REFUSED_STATUSES:
        return InfluxRefusedError(f"InfluxDB at {url} refused {request} (HTTP {status}): {detail}", status)
    if status == 404:
        return InfluxNotFoundError(f"InfluxDB at {url} found nothing to answer {request} (HTTP 404: {detail})", status)
    return InfluxError(f"InfluxDB at {url} failed {request} (HTTP {status}): {detail}", status)


def connection_error(url: str, exc: BaseException, timeout_s: float, timed_out: bool = False) -> InfluxUnreachableError:
    """The error of a request that got no answer: ``timed_out`` (or a TimeoutError) after ``timeout_s``."""
    if timed_out or isinstance(exc, TimeoutError):
        return InfluxTimeoutError(f"InfluxDB at {url} cannot be reached: no answer within {timeout_s:g} s")
    return InfluxUnreachableError(f"InfluxDB at {url} cannot be reached ({exc})")
