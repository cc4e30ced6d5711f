"""``coldchain sim fleet``: one process publishing telemetry for many simulated crates, for load and soak.

Each crate has its own id, its own ``seq`` and (with ``--credentials``) its own
broker login. Messages go out round-robin over the crates at a target aggregate
rate, bounded by a message count and a duration; the report says what rate was
achieved and how many messages the broker acknowledged.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from coldchain.errors import ConfigError
from coldchain.settings.argtypes import finite, port_number, positive
from coldchain.topics import telemetry_topic, valid_identifier
from coldchain.wire import Reading, Telemetry, encode
from firmware_sim.fleet_mqtt import Credentials, MqttPool, PoolError
from firmware_sim.scenario import Scenario, read_scenario

__all__ = ["FleetPlan", "FleetReport", "Replay", "Steady", "main", "read_credentials", "run_fleet"]

_DRAIN_S = 10.0  # after the last publish, wait this long for outstanding PUBACKs


@dataclass(frozen=True, slots=True)
class FleetReport:
    """What a fleet run did."""

    crates: int
    clients: int
    sent: int
    acked: int
    seconds: float  # from the first publish to the last PUBACK (or the last publish, when none came)
    target_rate: float

    @property
    def rate(self) -> float:
        """Achieved rate: messages the broker acknowledged per second."""
        return self.acked / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """One human line."""
        return (
            f"fleet: {self.crates} crates over {self.clients} client(s): {self.sent} messages published, "
            f"{self.acked} acknowledged by the broker in {self.seconds:.2f} s: {self.rate:.0f} msg/s "
            f"(target {self.target_rate:g})"
        )


def read_credentials(path: Path) -> list[tuple[str, Credentials]]:
    """``crate password`` per line (``#`` comments); the crate id is also the username."""
    entries = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2 or not valid_identifier(fields[0]):
            raise ValueError(f"{path}:{number}: expected '<crate-id> <password>', got {raw!r}")
        entries.append((fields[0], Credentials(fields[0], fields[1])))
    if not entries:
        raise ValueError(f"{path}: no credentials in the file")
    return entries


Sampler = Callable[[int, random.Random], tuple[int, tuple[Reading, ...]]]  # seq, rng -> (ts, readings)


@dataclass(frozen=True, slots=True)
class Steady:
    """Every crate reports ``start_c`` plus noise on ``probe1``, stamped with the real time."""

    start_c: float = -185.0
    noise_c: float = 0.05

    def __call__(self, seq: int, rng: random.Random) -> tuple[int, tuple[Reading, ...]]:
        return time.time_ns() // 1_000_000, (Reading("probe1", round(self.start_c + rng.gauss(0.0, self.noise_c), 2)),)


@dataclass
class Replay:
    """Every crate replays a scenario's shipment, one sample period per message, stamped in simulated time.

    The probes' noise and range apply; the scenario's faults (a board matter) do not.
    """

    scenario: Scenario
    epoch_ms: int
    period_s: float

    def __post_init__(self) -> None:
        model = self.scenario.model()
        self._sources = {"payload": model.temperature, "ambient": model.ambient.at}

    def __call__(self, seq: int, rng: random.Random) -> tuple[int, tuple[Reading, ...]]:
        t_s = seq * self.period_s
        readings = []
        for probe in self.scenario.probes:
            sample = probe.read(self._sources[probe.location](t_s), rng)
            ok = sample.status == "OK"
            readings.append(
                Reading(probe.name, round(sample.celsius, 2) if ok else None, None if ok else sample.status)
            )
        return self.epoch_ms + round(t_s * 1000), tuple(readings)


@dataclass(frozen=True, slots=True)
class FleetPlan:
    """What to publish: crates (each through client ``client_of[i]``), what they report, how fast, how long."""

    crates: list[str]
    client_of: list[int]
    rate: float
    count: int
    duration_s: float
    sampler: Sampler
    first_seq: int = 0


def run_fleet(pool: MqttPool, plan: FleetPlan, rng: random.Random) -> FleetReport:
    """Publish round-robin over the crates at ``plan.rate`` msg/s until ``plan.count`` messages or the duration."""
    crates, client_of, rate, count = plan.crates, plan.client_of, plan.rate, plan.count
    seqs = [plan.first_seq] * len(crates)
    topics = [telemetry_topic(c) for c in crates]
    sent = 0
    started = time.monotonic()
    last = started
    while sent < count:
        now = time.monotonic()
        if now - started >= plan.duration_s:
            break
        # never more unacknowledged than the clients' in-flight windows: beyond them paho queues, and its
        # queue costs time per PUBACK in proportion to its length
        due = min(count, math.floor(rate * (now - started)) + 1, pool.acked + pool.window)
        while sent < due:
            i = sent % len(crates)
            ts, readings = plan.sampler(seqs[i], rng)
            message = Telemetry(crates[i], seqs[i], ts, readings)
            pool.publish(client_of[i], topics[i], encode(message), 1)
            seqs[i] += 1
            sent += 1
            last = time.monotonic()
        pool.service(max(0.0, min((sent + 1) / rate - (time.monotonic() - started), 0.01)))
    deadline = time.monotonic() + _DRAIN_S
    while pool.acked < sent and time.monotonic() < deadline:
        pool.service(0.01)
    finished = max(last, pool.last_ack)
    return FleetReport(len(crates), len(pool.clients), sent, pool.acked, finished - started, rate)


def _sampler(args: argparse.Namespace) -> Sampler:
    if args.scenario is None:
        return Steady(args.start, args.noise)
    scenario = read_scenario(args.scenario)
    epoch_ms = args.epoch_ms
    if epoch_ms is None:  # the shipment ends now: a gateway refuses telemetry from the future
        epoch_ms = time.time_ns() // 1_000_000 - round(scenario.duration_s * 1000)
    return Replay(scenario, epoch_ms, args.period or scenario.period_s)


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Publish telemetry for many simulated crates.")
    add = parser.add_argument
    add("--crates", type=int, default=1000, metavar="N", help="number of crates (default 1000)")
    add("--prefix", default="FLEET", help="crate ids are PREFIX-00001... (default FLEET)")
    add("--credentials", type=Path, metavar="FILE", help="'crate password' per line: one broker login per crate")
    add("--client-per-crate", action="store_true", help="one MQTT client per crate (implied by --credentials)")
    add("--mqtt-host", default="127.0.0.1", help="broker host (default 127.0.0.1)")
    add("--mqtt-port", type=port_number, default=1883, help="broker port (default 1883)")
    add("--rate", type=positive, default=1000.0, metavar="MSG_PER_S", help="target aggregate rate (default 1000)")
    add("--count", type=int, default=100_000, metavar="N", help="stop after N messages (default 100000)")
    add("--duration", type=positive, default=60.0, metavar="SECONDS", help="stop after this long (default 60)")
    add("--scenario", type=Path, metavar="FILE", help="every crate replays this shipment, stamped in simulated time")
    add("--period", type=positive, default=None, metavar="SECONDS", help="with --scenario: simulated time per message")
    add(
        "--epoch-ms",
        type=int,
        default=None,
        metavar="MS",
        help="with --scenario: shipment start (default: so it ends now)",
    )
    add("--start", type=finite, default=-185.0, metavar="C", help="temperature the crates report (default -185)")
    add("--noise", type=finite, default=0.05, metavar="C", help="noise on it, 1 sigma (default 0.05)")
    add("--first-seq", type=int, default=0, metavar="N", help="first seq of every crate (continue a soak run)")
    add("--seed", type=int, default=None, metavar="N", help="random seed for the values")
    add("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv: list[str], prog: str = "coldchain sim fleet") -> int:
    """Run a bounded fleet; print the achieved rate. Exit 1 when the broker did not acknowledge everything."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    for name, value, low in (
        ("--crates", args.crates, 1),
        ("--count", args.count, 1),
        ("--first-seq", args.first_seq, 0),
    ):
        if value < low:
            parser.error(f"{name} must be at least {low}, got {value}")
    if args.noise < 0:
        parser.error(f"--noise must be 0 or more, got {args.noise}")
    if args.credentials is not None:
        try:
            entries = read_credentials(args.credentials)[: args.crates]
        except OSError as exc:
            print(f"{prog}: cannot read --credentials {args.credentials}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        except ValueError as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return 2
        crates = [crate for crate, _ in entries]
        logins: list[Credentials | None] = [login for _, login in entries]
    else:
        crates = [f"{args.prefix}-{i:05d}" for i in range(1, args.crates + 1)]
        if not valid_identifier(crates[-1]):
            parser.error(f"--prefix {args.prefix!r} does not make valid crate ids")
        logins = [None] * len(crates) if args.client_per_crate else [None]
    try:
        sampler = _sampler(args)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    per_crate = len(logins) == len(crates)
    client_ids = [f"sim-{c}" for c in crates] if per_crate else [f"sim-fleet-{args.prefix}"]
    pool = MqttPool(args.mqtt_host, args.mqtt_port, client_ids, logins)
    try:
        pool.connect(timeout_s=30.0)
        rng = random.Random(args.seed)  # noqa: S311 -- simulation, not secrets
        client_of = list(range(len(crates))) if per_crate else [0] * len(crates)
        plan = FleetPlan(crates, client_of, args.rate, args.count, args.duration, sampler, args.first_seq)
        report = run_fleet(pool, plan, rng)
    except PoolError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    finally:
        pool.close()
    print(json.dumps({**asdict(report), "rate": round(report.rate, 1)}) if args.json else report.line(), flush=True)
    return 0 if report.acked == report.sent else 1
