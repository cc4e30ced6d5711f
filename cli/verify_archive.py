"""``coldchain verify-archive``: check the gateway's evidence archive link by link.

Reports the first line where the hash chain or a crate's signature breaks, or
that every line verified. Exit status 0 when intact, 1 at a break, 2 on bad use.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from coldchain.evidence import verify_chain
from coldchain.helptext import help_text
from coldchain.topics import valid_identifier

__all__ = ["main"]


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
    if not args.archive.is_file():
        print(f"{prog}: {args.archive}: no such archive file", file=sys.stderr)
        return 2
    keys_dir: Path | None = args.keys_dir

    def key_for(crate: str) -> bytes | None:
        assert keys_dir is not None
        path = keys_dir / f"{crate}.key"
        if not valid_identifier(crate) or not path.is_file():
            return None
        return bytes.fromhex(path.read_text().strip())

    count, broken = verify_chain(_lines(args.archive), key_for if keys_dir else None)
    if broken is not None:
        print(f"{args.archive}: BROKEN at line {broken.line} of {count} read: {broken.reason}")
        return 1
    checked = "hash chain and signatures" if keys_dir else "hash chain"
    print(f"{args.archive}: intact, {count} lines, {checked} verified")
    return 0
