"""``coldchain``: one command, a subcommand per program or task.

Programs are imported only when their subcommand runs, so ``coldchain sim`` on a
laptop never needs the InfluxDB client, and ``coldchain agent`` on a Pi never
loads the gateway.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import tomllib
from importlib import metadata
from pathlib import Path

__all__ = ["main", "version"]

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"

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
    "release": ("cli.release", "record QA's release decision on the data a report showed"),
    "verify-archive": ("cli.verify_archive", "check the gateway's evidence archive for tampering"),
    "ack": ("cli.ack", "acknowledge an active alarm: who takes it on, with a note"),
    "cluster-auth": ("cli.cluster_auth", "write the NATS cluster's logins and rights from provisioned credentials"),
}


def version() -> str:
    """The installed package's version; from a source tree that is not installed, its pyproject.toml's."""
    try:
        return metadata.version("coldchain")
    except metadata.PackageNotFoundError:
        pass
    try:
        project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
        return f"{project['version']} (not installed)"
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError):
        return "unknown (not installed)"


def _usage() -> str:
    lines = ["usage: coldchain <command> [options]", "       coldchain --version", "", "commands:"]
    lines += [f"  {name:<15} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "'coldchain <command> --help' for a command's options."]
    return "\n".join(lines)


def _bad_use(problem: str) -> int:
    """Say what is wrong as argparse does (usage line, then one error line); the status for bad use."""
    print(f"usage: coldchain <command> [options]\ncoldchain: error: {problem}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``coldchain <command> ...`` to the program's own ``main``."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        return _bad_use("a command is needed; 'coldchain --help' lists them")
    if args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        print(f"coldchain {version()}")
        return 0
    command, rest = args[0], args[1:]
    if command not in SUBCOMMANDS:
        return _bad_use(f"unknown command {command!r} (one of: {', '.join(SUBCOMMANDS)})")
    module = importlib.import_module(SUBCOMMANDS[command][0])
    prog = f"coldchain {command}"
    try:
        return int(module.main(rest, prog=prog))
    except KeyboardInterrupt:  # Ctrl-C where the command has nothing to finish: no traceback
        print(f"{prog}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except BrokenPipeError:
        # whoever read the output stopped (e.g. '| head'): end as a pipeline expects, and keep the
        # interpreter's last flush of stdout from failing the same way
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
