"""Per-message CPU cost of the gateway's worker step (``Ingest.handle``), in-process, no broker or database.

Usage: .venv/bin/python bench/ingest_cost.py [--signed] [--archive] [--messages N] [--crates C] [--runs R]
Live telemetry (ts = now) from C crates, cryo profile, one reading each, no excursion: the common case.
``--signed`` verifies an HMAC signature on every message (``[security] keys_dir``); ``--archive``
keeps each accepted payload for the evidence archive (its fsync is per batch, on the writer thread).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coldchain.signing import sign  # noqa: E402
from gateway.config import load_config  # noqa: E402
from gateway.ingest import Batch, Ingest  # noqa: E402


def main() -> None:
    """Print microseconds per message (best of ``--runs`` runs)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--signed", action="store_true")
    parser.add_argument("--archive", action="store_true")
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--crates", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        profiles = json.dumps(str(ROOT / "config" / "profiles.toml"))
        (base / "gw.toml").write_text(f'[profiles]\nfile = {profiles}\ndefault = "cryo"\n')
        config = load_config(base / "gw.toml")
        now = int(time.time() * 1000)
        crates = [f"C-{i:04d}" for i in range(args.crates)]
        deliveries = []
        for n in range(args.messages):
            crate = crates[n % len(crates)]
            seq = n // len(crates) + 1
            body = {"v": 1, "crate": crate, "seq": seq, "ts": now - args.messages + n,
                    "readings": [{"sensor": "probe1", "value_c": -180.0 + (n % 7) * 0.1}]}  # fmt: skip
            if args.signed:
                body["sig"] = sign(body, crate.encode() * 4)
            deliveries.append((f"coldchain/v1/crates/{crate}/telemetry", json.dumps(body).encode(), n, 0))
        if args.signed:
            from gateway.authenticity import Authenticity  # noqa: PLC0415 (only with --signed)
            from gateway.config import SecurityConfig  # noqa: PLC0415

            for crate in crates:
                (base / f"{crate}.key").write_text((crate.encode() * 4).hex())
        best = float("inf")
        for _ in range(args.runs):
            authenticity = None
            if args.signed:
                authenticity = Authenticity(SecurityConfig(keys_dir=base, require_signatures=True))
            ingest = Ingest(config, authenticity=authenticity, archiving=args.archive)
            batch = Batch()
            started = time.perf_counter()
            for i, delivery in enumerate(deliveries):
                ingest.handle(delivery, batch, now)
                if i % 500 == 499:
                    batch = Batch()
            best = min(best, time.perf_counter() - started)
            assert ingest.readings == args.messages, ingest.rejects
        print(f"{best / args.messages * 1e6:.2f} us/message ({args.messages} messages, {args.crates} crates)")


if __name__ == "__main__":
    main()
