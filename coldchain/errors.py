"""The error tree, organised by how the caller reacts.

Each class mixes in the builtin a caller would naturally catch, so code that
does not know coldchain still handles our errors sensibly.
"""

from __future__ import annotations

__all__ = [
    "ColdchainError",
    "ConfigError",
    "ProbeError",
    "RetryableStoreError",
    "SentenceError",
    "StoreError",
    "WireFormatError",
]


class ColdchainError(Exception):
    """Root of every error coldchain raises on purpose."""


class ConfigError(ColdchainError, ValueError):
    """A configuration file is missing, malformed or holds a bad value: stop at start-up."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


class WireFormatError(ColdchainError, ValueError):
    """An MQTT payload does not follow the wire contract: reject it, count it, carry on."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class SentenceError(ColdchainError, ValueError):
    """A serial line from the probe board is not a valid sentence: count it, carry on."""


class ProbeError(ColdchainError, OSError):
    """A probe or its link cannot be read: report a fault reading, retry later."""


class StoreError(ColdchainError, RuntimeError):
    """The time-series store refused data for good (bad credentials, bad points)."""


class RetryableStoreError(StoreError):
    """The store is unreachable or busy: keep the data, back off and try again."""
