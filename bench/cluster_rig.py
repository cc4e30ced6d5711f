"""Bench helper for bench/bench_cluster.sh: one system under test, the peer workload, every process's cost.

``--sut mosquitto``: the gateway on the harness's mosquitto (127.0.0.1:18831), as bench_gateway.sh runs it.
``--sut cluster``: a private three-node nats-server cluster (cli.cluster_services, temp dir, free ports;
the crate space mapped into ``--partitions``) with the JetStream gateways (``--gateways``) sharing the
partitions by leases, publishing and alarms through node 1's MQTT listener.
Both write to the harness's influxd (127.0.0.1:18086, database ``coldchain``).

At each rate the harness's own ``measure.py`` runs (its row: throughput, loss, drain, alarm latency,
and CPU/RSS of the first gateway). measure.py samples one PID; this rig samples every process of
the system (gateways, and the broker: mosquitto, or the three nodes) from /proc around the same run
and appends a ``{"bench": "cluster_cost", ...}`` line: CPU seconds per group over measure.py's busy
window (first publish -> last point landed, from its row) and the highest summed RSS.

    .venv/bin/python bench/cluster_rig.py --sut cluster --gateways 2 --peer ../shared/peer-bench \
        --python $BENCH_HOME/.venv/bin/python --json results.jsonl --rates 10000 max max-c
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.cluster_services import NatsCluster  # noqa: E402
from gateway.jetstream_stream import mappings  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
MOSQUITTO_PORT = 18831


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    """Resident set size in MB (0 when gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) / 1024 if match else 0.0


def gateway_config(workdir: Path, name: str, cluster: str = "") -> Path:
    """bench/gateway.toml with its relative files made absolute, a state file of its own in ``workdir``, and
    ``cluster`` (a ``[cluster]`` table) appended."""
    text = (ROOT / "bench" / "gateway.toml").read_text()
    text = text.replace('file = "profiles.toml"', f"file = {json.dumps(str(ROOT / 'bench' / 'profiles.toml'))}")
    text = re.sub(r'(?m)^file = "results/.*"$', f"file = {json.dumps(str(workdir / (name + '-state.sqlite')))}", text)
    text = text.replace('client_id = "coldchain-gateway-bench"', f'client_id = "{name}"')
    path = workdir / f"{name}.toml"
    path.write_text(text + cluster)
    return path


def start_gateway(argv: list[str], log: Path) -> subprocess.Popen[str]:
    """Start a gateway; return once it printed ``subscribed`` (60 s at most)."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log.open("ab"), text=True, cwd=ROOT)
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if "subscribed" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(60):
        process.kill()
        raise SystemExit(f"gateway did not subscribe within 60 s; its log: {log}")
    return process


def _get(http_port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}{path}", timeout=5) as response:
        return dict(json.load(response))


def nats_counters(http_ports: list[int]) -> dict[str, int]:
    """The nodes' counters (monitoring endpoints) that say where a reading's cost goes.

    Summed over the nodes: messages in and out (``/varz``: client, route and MQTT traffic) and JetStream
    API requests (``/jsz``). From the first node: the messages sent by the gateways' NATS connections
    (``/connz``: fetch requests, acks, in-progress marks, KV writes, leases; named ``gw-*``), and the last
    sequence of the telemetry stream and of each bucket (one per write, replicated to all three nodes).
    """
    counters = dict.fromkeys(("in_msgs", "out_msgs", "js_api"), 0)
    for port in http_ports:
        varz = _get(port, "/varz")
        counters["in_msgs"] += int(varz.get("in_msgs", 0))
        counters["out_msgs"] += int(varz.get("out_msgs", 0))
        counters["js_api"] += int((_get(port, "/jsz").get("api") or {}).get("total", 0))
    gateways = 0
    for port in http_ports:
        for connection in _get(port, "/connz?limit=1024").get("connections") or []:
            if str(connection.get("name", "")).startswith("gw-"):
                gateways += int(connection.get("in_msgs", 0))
    counters["gateway_msgs"] = gateways
    jsz = _get(http_ports[0], "/jsz?accounts=true&streams=true")
    for account in jsz.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            name = str(stream.get("name", ""))
            if name == "COLDCHAIN" or name.startswith("KV_"):
                counters[f"seq_{name}"] = int((stream.get("state") or {}).get("last_seq", 0))
    return counters


@contextmanager
def system(
    sut: str, gateways: int, partitions: int, workdir: Path
) -> Iterator[tuple[int, dict[str, list[int]], list[int]]]:
    """Start the SUT; yield (MQTT port to publish to, {"gateways": pids, "broker": pids}, the nodes' monitoring
    ports (none on mosquitto)); stop what was started."""
    python = sys.executable
    started: list[subprocess.Popen[str]] = []
    cluster = None
    try:
        if sut == "mosquitto":
            argv = [python, "-m", "gateway", "--config", str(gateway_config(workdir, "gw-mosquitto"))]
            started.append(start_gateway([*argv, "--log-level", "WARNING"], workdir / "gw-mosquitto.log"))
            broker = [int((Path(os.environ["SVC"]) / "mosquitto.pid").read_text())]
            yield MOSQUITTO_PORT, {"gateways": [p.pid for p in started], "broker": broker}, []
            return
        cluster = NatsCluster(workdir / "nats", auth=mappings(partitions)).start()
        nats = ", ".join(f'"{url}"' for url in cluster.urls)
        brokers = ", ".join(f'"{broker}"' for broker in cluster.mqtt_brokers)
        table = f"\n[cluster]\nnats = [{nats}]\nbrokers = [{brokers}]\npartitions = {partitions}\n"
        for i in range(gateways):
            name = f"gw-{i + 1}"
            argv = [python, "-m", "gateway.jetstream_main", "--config", str(gateway_config(workdir, name, table))]
            # INFO: the gateway logs at its stop what it asked of JetStream (fetches, acks, in-progress marks)
            started.append(start_gateway([*argv, "--log-level", "INFO"], workdir / f"{name}.log"))
        time.sleep(5)  # the gateways spread the partitions between them (a lease round is lease_ttl / 3)
        nodes = [n.process.pid for n in cluster.nodes if n.process is not None]
        yield (
            cluster.nodes[0].mqtt_port,
            {"gateways": [p.pid for p in started], "broker": nodes},
            [n.http_port for n in cluster.nodes],
        )
    finally:
        for process in started:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        if cluster is not None:
            cluster.stop()
            for log in sorted(workdir.glob("gw-*.log")):
                traffic = [line for line in log.read_text().splitlines() if "JetStream traffic" in line]
                print(f"{log.stem}: {traffic[-1] if traffic else 'no JetStream traffic line'}", flush=True)


def idle(args: argparse.Namespace, label: str, pids: dict[str, list[int]], seconds: float = 10.0) -> None:
    """The system's cost with nothing to do (leases, heartbeats, fetch polls), as a ``cluster_idle`` line."""
    before = {group: sum(cpu_s(p) for p in group_pids) for group, group_pids in pids.items()}
    time.sleep(seconds)
    line: dict[str, object] = {"bench": "cluster_idle", "label": label, "seconds": seconds}
    for group, group_pids in pids.items():
        line[f"{group}_cpu_pct"] = round(100 * (sum(cpu_s(p) for p in group_pids) - before[group]) / seconds, 1)
        line[f"{group}_rss_mb"] = round(sum(rss_mb(p) for p in group_pids))
    print(json.dumps(line), flush=True)
    with args.json.open("a") as results:
        results.write(json.dumps(line) + "\n")


def measure(
    args: argparse.Namespace, label: str, port: int, pids: dict[str, list[int]], http_ports: list[int], rate: str
) -> None:
    """One measure.py run at ``rate`` and the system's cost line beside it (with the nodes' counters per reading)."""
    n = {"max": args.max_count, "max-c": args.maxc_count}.get(rate) or int(rate) * args.seconds_per_rate
    gen = "c" if rate == "max-c" else "python"
    argv = [args.python, str(args.peer / "measure.py"), "--label", label, "--sut-pid", str(pids["gateways"][0]),
            "--port", str(port), "--count", str(n), "--rate", "0" if rate.startswith("max") else rate,
            "--generator", gen, "--procs", "2" if gen == "c" else "1", "--alarm-every", str(max(1, n // 40)),
            "--timeout", str(args.timeout)]  # fmt: skip
    counted = nats_counters(http_ports) if http_ports else {}
    before = {group: sum(cpu_s(p) for p in group_pids) for group, group_pids in pids.items()}
    peak = dict.fromkeys(pids, 0.0)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            for group, group_pids in pids.items():
                peak[group] = max(peak[group], sum(rss_mb(p) for p in group_pids))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = subprocess.run([*argv, "--json", str(args.json)], cwd=args.peer, capture_output=True, text=True, check=False)
    done.set()
    sampler.join()
    print(out.stdout.strip(), flush=True)
    row = json.loads(args.json.read_text().splitlines()[-1])
    landed, rate_pts = row.get("landed_points") or 0, row.get("points_per_s") or 0
    busy = landed / rate_pts if rate_pts else None
    cost: dict[str, object] = {"bench": "cluster_cost", "label": label, "target_rate": row.get("target_rate"),
                               "busy_s": round(busy, 2) if busy else None, "loss_points": row.get("loss_points"),
                               "points_per_s": rate_pts, "lat_p99_ms": row.get("lat_p99_ms")}  # fmt: skip
    for group, group_pids in pids.items():
        spent = sum(cpu_s(p) for p in group_pids) - before[group]
        cost[f"{group}_cpu_s"] = round(spent, 2)
        cost[f"{group}_cpu_pct"] = round(100 * spent / busy) if busy else None
        cost[f"{group}_rss_mb"] = round(peak[group])
        cost[f"{group}_processes"] = len(group_pids)
    if http_ports and landed:
        time.sleep(2)  # the last batches' state writes and acks
        after = nats_counters(http_ports)
        cost["per_reading"] = {key: round((after[key] - counted.get(key, 0)) / landed, 2) for key in after}
    print(json.dumps(cost), flush=True)
    with args.json.open("a") as results:
        results.write(json.dumps(cost) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sut", choices=("mosquitto", "cluster"), required=True)
    parser.add_argument("--gateways", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=32)
    parser.add_argument("--peer", type=Path, required=True, help="the peer bench's folder")
    parser.add_argument("--python", required=True, help="the harness's python (its venv has paho-mqtt)")
    parser.add_argument("--json", type=Path, required=True, help="results file (appended)")
    parser.add_argument("--rates", nargs="+", default=["10000", "max", "max-c"])
    parser.add_argument("--seconds-per-rate", type=int, default=10)
    parser.add_argument("--max-count", type=int, default=100_000)
    parser.add_argument("--maxc-count", type=int, default=200_000)
    parser.add_argument("--warmup", type=int, default=5000)
    parser.add_argument("--timeout", type=int, default=120, help="bound of each measure.py run (s)")
    args = parser.parse_args()
    args.peer = args.peer.resolve()
    label = "gateway on mosquitto" if args.sut == "mosquitto" else f"cluster: {args.gateways} gw, 3 nodes"
    with (
        tempfile.TemporaryDirectory(prefix="coldchain-cluster-bench-") as tmp,
        system(args.sut, args.gateways, args.partitions, Path(tmp)) as (port, pids, http_ports),
    ):
        janitor = subprocess.Popen([args.python, str(ROOT / "bench" / "alarm_janitor.py"), "--port", str(port)])
        try:
            time.sleep(1)  # subscriptions settle
            idle(args, label, pids)
            if args.warmup:
                warm = [args.python, str(args.peer / "measure.py"), "--label", "warm-up", "--port", str(port),
                        "--count", str(args.warmup), "--rate", "2500", "--timeout", str(args.timeout)]  # fmt: skip
                subprocess.run(warm, cwd=args.peer, capture_output=True, check=False)
            for rate in args.rates:
                measure(args, label, port, pids, http_ports, rate)
        finally:
            janitor.terminate()
            janitor.wait(10)


if __name__ == "__main__":
    main()
