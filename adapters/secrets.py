"""The files a connection needs: that they exist when the config is loaded, and reading a secret from one.

The core names the files (``coldchain.settings.broker``, ``coldchain.settings.influx``); looking at the
disk is I/O, so it is done here, once for every program.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from coldchain.settings.table import Table

__all__ = ["SecretError", "loosely_readable", "optional_secret", "read_secret", "require_files", "secret_setting"]

log = logging.getLogger(__name__)


class SecretError(OSError):
    """A password, token or key file gave no secret: the message names the file and why.

    An OSError, as reading the file directly raised before, so every existing handler still catches it.
    """


def require_files(table: Table, settings: object, names: Iterable[str]) -> None:
    """Refuse, naming the key, a file of ``settings`` (its attributes ``names``) that does not exist."""
    for name in names:
        path: Path | None = getattr(settings, name)
        if path is not None and not path.is_file():
            raise table.error(name, f"file {path} does not exist")


def loosely_readable(path: Path) -> bool:
    """True when users other than the owner may read or write the file at ``path``."""
    return bool(path.stat().st_mode & 0o077)


def read_secret(path: Path) -> str:
    """The first line of the file at ``path``, stripped; warns when other users can read it.

    SecretError when the file cannot be read or holds no secret.
    """
    try:
        if loosely_readable(path):
            log.warning("secret file %s can be read by other users: chmod 600 it", path)
        lines = path.read_text(encoding="utf-8").strip().splitlines()
    except OSError as exc:
        raise SecretError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError:  # not UTF-8 text, or a NUL in the name
        raise SecretError(f"cannot read {str(path)!r}: not UTF-8 text, or a NUL in its name") from None
    if not lines:
        raise SecretError(f"{path} is empty")
    return lines[0].strip()


def secret_setting(table: Table, name: str, path: Path) -> str:
    """``read_secret`` of the file key ``name`` of ``table`` names, its failure a ConfigError naming the key."""
    try:
        return read_secret(path)
    except SecretError as exc:
        raise table.error(name, str(exc)) from None


def optional_secret(table: Table, name: str, base: Path) -> str | None:
    """The secret in the file key ``name`` names (relative to ``base``, the config file's directory), None
    without the key; a ConfigError naming the key when the file gives no secret."""
    path = table.file_path(name, base)
    return None if path is None else secret_setting(table, name, path)
