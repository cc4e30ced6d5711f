"""Command-line option types the programs share: argparse refuses a bad value, before any service is reached."""

from __future__ import annotations

import argparse
import math

__all__ = ["finite", "non_negative", "port_number", "positive", "positive_int", "text", "utf8_text"]


def finite(text: str) -> float:
    """A finite number: 'nan' and 'inf' are refused."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive(text: str) -> float:
    """A finite number above 0."""
    value = finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def non_negative(text: str) -> float:
    """A finite number, 0 or more."""
    value = finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_int(text: str) -> int:
    """A whole number above 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def port_number(text: str) -> int:
    """A TCP port, 1-65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def text(value: str) -> str:
    """Non-empty printable text: no control characters, nothing the command line could not decode as UTF-8."""
    if not value or not value.isprintable():
        raise argparse.ArgumentTypeError(f"{value!r} must be non-empty printable text")
    return value


def utf8_text(value: str) -> str:
    """Any text the command line decoded as UTF-8 (a byte that was not UTF-8 arrives as a lone surrogate)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(f"{value!r} is not UTF-8 text") from None
    return value
