"""``coldchain``: one command, a subcommand per program or task.

Programs are imported only when their subcommand runs, so ``coldchain sim`` on a
laptop never needs the InfluxDB client, and ``coldchain agent`` on a Pi never
loads the gateway.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["main"]

# subcommand -> (module with main(argv) -> int, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "sim": ("firmware_sim.__main__", "simulate the probe board on a pseudo-terminal"),
    "agent": ("edge.__main__", "run the crate's edge agent (probes -> spool -> MQTT)"),
    "gateway": ("gateway.__main__", "run the gateway (MQTT -> validation -> InfluxDB, alarms)"),
    "demo": ("cli.demo", "run the whole system on private services, with simulated crates"),
    "provision": ("cli.provision", "make credentials for a crate, a staff member or the gateway"),
    "board": ("board.__main__", "serve the live alert board for staff in the browser"),
    "alerts": ("cli.alerts", "list active alarms from the broker; --follow streams transitions"),
    "query": ("cli.query", "a crate's readings, min/max/mean and time out of range from InfluxDB"),
    "report": ("cli.report", "a shipment's or crate's QA release report (PDF, CSV or JSON)"),
    "verify-archive": ("cli.verify_archive", "check the gateway's evidence archive for tampering"),
    "ack": ("cli.ack", "acknowledge an active alarm: who takes it on, with a note"),
    "cluster-auth": ("cli.cluster_auth", "write the NATS cluster's logins and rights from provisioned credentials"),
}


def _usage() -> str:
    lines = ["usage: coldchain <command> [options]", "", "commands:"]
    lines += [f"  {name:<15} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "'coldchain <command> --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``coldchain <command> ...`` to the program's own ``main``."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in SUBCOMMANDS:
        print(f"coldchain: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[command][0])
    return int(module.main(rest, prog=f"coldchain {command}"))


if __name__ == "__main__":
    sys.exit(main())
