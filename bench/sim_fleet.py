"""Fleet mode: achieved telemetry rate of ``coldchain sim fleet`` against a private mosquitto.

Runs the fleet at each target rate with one shared MQTT client and with one client per
crate, and prints the rate the broker acknowledged (QoS 1, every message PUBACKed).

    .venv/bin/python bench/sim_fleet.py --crates 1000 --count 30000 --rates 1000 5000 50000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cli.services import Mosquitto


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crates", type=int, default=1000)
    parser.add_argument("--count", type=int, default=30000)
    parser.add_argument("--rates", type=float, nargs="+", default=[1000.0, 5000.0, 50000.0])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        broker = Mosquitto(Path(workdir)).start()
        try:
            print(f"{'clients':>8} {'target msg/s':>13} {'acked':>7} {'seconds':>8} {'achieved msg/s':>15}")
            for per_crate in (False, True):
                for rate in args.rates:
                    argv = [sys.executable, "-m", "firmware_sim", "fleet", "--mqtt-port", str(broker.port)]
                    argv += ["--crates", str(args.crates), "--count", str(args.count), "--rate", str(rate)]
                    argv += ["--duration", "60", "--json", "--prefix", f"B{int(per_crate)}{int(rate)}"]
                    if per_crate:
                        argv.append("--client-per-crate")
                    report = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
                    print(
                        f"{report['clients']:>8} {rate:>13.0f} {report['acked']:>7} "
                        f"{report['seconds']:>8.2f} {report['rate']:>15.0f}"
                    )
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
