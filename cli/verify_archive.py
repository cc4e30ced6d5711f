"""``coldchain verify-archive``: check the gateway's evidence archive link by link.

Reports the first line where the hash chain or a crate's signature breaks, or
that every line verified. Exit status 0 when intact, 1 at a break, 2 on bad use.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from coldchain.helptext import help_text
from coldchain.record.evidence import verify_chain
from coldchain.topics import valid_identifier

__all__ = ["main"]


class _KeyFileError(Exception):
    """A crate's key file cannot be used: the message names it."""


def _unusable(archive: Path, keys_dir: Path | None) -> str | None:
    """What makes the options unusable before reading a line, or None."""
    if not archive.exists():
        return f"{archive}: no such archive file"
    if not archive.is_file():
        return f"{archive}: not a file (the archive is the gateway's [security] archive file)"
    if keys_dir is not None and not keys_dir.is_dir():
        return f"--keys-dir {keys_dir}: no such directory"
    return None


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from handle


def main(argv: list[str], prog: str = "coldchain verify-archive") -> int:
    """Verify an archive file; with ``--keys-dir`` also every message's signature."""
    parser = argparse.ArgumentParser(
        prog=prog, description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("archive", type=Path, help="the gateway's archive file (JSON lines)")
    parser.add_argument("--keys-dir", type=Path, help="crate signing keys (<crate>.key, hex), as provisioned")
    args = parser.parse_args(argv)
    problem = _unusable(args.archive, args.keys_dir)
    if problem is not None:
        print(f"{prog}: {problem}", file=sys.stderr)
        return 2
    keys_dir: Path | None = args.keys_dir

    def key_for(crate: str) -> bytes | None:
        assert keys_dir is not None
        path = keys_dir / f"{crate}.key"
        if not valid_identifier(crate) or not path.is_file():
            return None
        try:
            return bytes.fromhex(path.read_text().strip())
        except (OSError, UnicodeDecodeError, ValueError):
            raise _KeyFileError(f"{path} does not hold a key in hex, as 'coldchain provision' writes it") from None

    try:
        count, broken = verify_chain(_lines(args.archive), key_for if keys_dir else None)
    except _KeyFileError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{prog}: cannot read {args.archive}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if broken is not None:
        print(f"{args.archive}: BROKEN at line {broken.line} of {count} read: {broken.reason}")
        return 1
    checked = "hash chain and signatures" if keys_dir else "hash chain"
    print(f"{args.archive}: intact, {count} lines, {checked} verified")
    return 0
