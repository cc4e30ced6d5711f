"""InfluxDB down for 10 minutes: everything arrives after it returns, with memory bounded (issue 3).

Run:  .venv/bin/python bench/influx_outage.py [--rate 200 --crates 200 --lead-in 60 --outage 600 --lead-out 60]
Smoke: .venv/bin/python bench/influx_outage.py --outage 20 --lead-in 10 --lead-out 10

A private mosquitto (the shipped broker's queue and durability settings, anonymous on loopback)
and influxd on free ports in a temp dir, and the real gateway (``python -m gateway``, shipped
batch and retry defaults, a state file, monitoring every second). A fleet of crates says
"online" (retained, as the edge agent does) and publishes QoS 1 telemetry at ``--rate``
messages/s. After the lead-in influxd is terminated for ``--outage`` seconds, then started
again on the same data dir and port; publishing goes on for the lead-out, then stops, and the
script waits (bounded) until InfluxDB holds every PUBACKed message.

Every second it samples RSS and CPU of the gateway and the broker (/proc), the gateway's
health file and the count in InfluxDB (every 0.2 s after influxd's return, for the drain time).
At the end it checks: count == PUBACKed, per crate count == max seq == distinct seqs ==
published, no gap, every crate's retained storage ack at its last seq, gateway RSS during the
outage and while the backlog drains within ``--rss-slack`` MB of before, and never more
messages held in the gateway (health ``held_max``) than twice its Receive Maximum:
the backlog must wait on the broker, not in the gateway.
Prints one JSON line and a markdown table row; exit 1 when a check failed.
Loopback only; kills only the processes it started (bench/outage_rig.py); removes its temp dir.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from outage_rig import DB, RECEIVE_MAXIMUM, Fleet, Gateway, broker_conf, gateway_conf, proc_figures

from cli.services import InfluxDB, Mosquitto, ServiceError, free_port


class Outage:
    """The whole run: services, gateway, fleet, the influxd outage, the sampler and the checks."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.dir = workdir
        port = free_port()
        conf, self.broker_settings = broker_conf(port, workdir / "mosquitto")
        self.broker = Mosquitto(workdir / "mosquitto", port=port, config=conf)
        self.influx = InfluxDB(workdir / "influxd")
        self.gateway: Gateway | None = None
        self.fleet: Fleet | None = None
        self.t0 = 0.0
        self.phase = "lead-in"
        self.samples: list[dict[str, Any]] = []
        self.marks: dict[str, float] = {}  # phase changes, seconds since t0
        self.acked_at_back = 0
        self.landed_at_back = 0
        self._stop_sampling = threading.Event()

    def now(self) -> float:
        """Seconds since publishing started."""
        return time.monotonic() - self.t0

    def landed(self) -> int | None:
        """Telemetry points in InfluxDB; None while it cannot answer."""
        try:
            rows = self.influx.rows("SELECT COUNT(value_c) FROM temperature", DB)
        except (OSError, ServiceError, KeyError, ValueError):
            return None
        return int(rows[0]["count"]) if rows else 0  # type: ignore[call-overload]

    def health(self) -> dict[str, Any]:
        """The gateway's health file (its own figures), empty when unreadable."""
        try:
            return dict(json.loads((self.dir / "gateway" / "health.json").read_text()))
        except (OSError, ValueError):
            return {}

    def _sample_loop(self) -> None:
        assert self.gateway is not None
        assert self.broker.process is not None
        assert self.fleet is not None
        gw_pid, broker_pid = self.gateway.process.pid, self.broker.process.pid
        last = {gw_pid: proc_figures(gw_pid)[1], broker_pid: proc_figures(broker_pid)[1]}
        last_t = time.monotonic()
        bound = int(self.args.lead_in + self.args.outage + self.args.lead_out + self.args.drain_timeout + 600)
        for _ in range(bound):  # one sample a second, bounded
            if self._stop_sampling.wait(1.0):
                return
            t = time.monotonic()
            sample: dict[str, Any] = {"t": round(self.now(), 1), "phase": self.phase}
            for name, pid in (("gw", gw_pid), ("broker", broker_pid)):
                rss, cpu = proc_figures(pid)
                sample[f"{name}_rss_mb"] = round(rss, 1)
                sample[f"{name}_cpu_pct"] = round(100 * (cpu - last[pid]) / (t - last_t), 1)
                last[pid] = cpu
            last_t = t
            health = self.health()
            for key in ("queue_depth", "readings", "write_failures", "write_failing_s", "duplicates"):
                sample[key] = health.get(key)
            sample["acked"] = self.fleet.acked
            sample["landed"] = self.landed() if self.phase != "outage" else None
            self.samples.append(sample)

    def _wait(self, until: float) -> None:
        """Sleep until ``until`` seconds since t0; fail if the gateway died meanwhile."""
        assert self.gateway is not None
        while (left := until - self.now()) > 0:
            time.sleep(min(left, 0.5))
            if self.gateway.process.poll() is not None:
                raise ServiceError(f"gateway exited; log:\n{self.gateway.log.read_text()[-3000:]}")

    def run(self) -> dict[str, Any]:
        """Start everything, make the outage, wait for the backlog to land; the figures and checks."""
        a = self.args
        self.broker.start()
        self.influx.start()
        (self.dir / "gateway").mkdir()
        config = self.dir / "gateway" / "gateway.toml"
        gateway_conf(config, self.broker, self.influx)
        self.gateway = Gateway(config, self.dir / "gateway" / "gateway.log")
        self.fleet = Fleet(self.broker, a.crates, a.rate)
        self.fleet.say_online()
        sampler = threading.Thread(target=self._sample_loop, name="sampler", daemon=True)
        self.t0 = time.monotonic()
        self.fleet.start(max_s=a.lead_in + a.outage + a.lead_out + 120)
        sampler.start()
        try:
            self._wait(a.lead_in)
            self.phase = "outage"
            self.influx.stop(kill=a.kill)
            self.marks["down"] = self.now()
            self._wait(a.lead_in + a.outage)
            self.influx.start()
            self.marks["back"] = back = self.now()
            self.acked_at_back = self.fleet.acked
            self.landed_at_back = self.landed() or 0
            self.phase = "lead-out"
            self._watch(back + a.lead_out, back + a.lead_out + a.drain_timeout)
            self._wait(self.now() + 2)  # a last sample after the end
        finally:
            self._stop_sampling.set()
            sampler.join(5)
        return self.figures()

    def _watch(self, stop_publishing: float, deadline: float) -> None:
        """Count every 0.2 s (when the backlog starts landing, when it is all in); stop publishing on time."""
        assert self.fleet is not None
        marks = self.marks
        while self.now() < deadline:
            if self.phase == "lead-out" and self.now() >= stop_publishing:
                self.fleet.stop()
                marks["published"] = self.now()
                self.phase = "drain"
            landed = self.landed()
            if landed is not None:
                if landed > self.landed_at_back:
                    marks.setdefault("first_write", self.now())
                if landed >= self.acked_at_back:
                    marks.setdefault("drained", self.now())
                if self.phase == "drain" and landed >= self.fleet.published:
                    marks["end"] = self.now()
                    return
            self._wait(self.now() + 0.2)

    def storage_acks(self) -> int:
        """Crates whose retained ``stored_through`` equals their last seq (waits up to 10 s)."""
        assert self.fleet is not None
        acks: dict[str, int] = {}
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"outage-acks-{os.getpid()}")

        def on_message(c: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
            body = json.loads(message.payload)
            acks[body["crate"]] = body["stored_through"]

        client.on_message = on_message
        client.connect(self.broker.host, self.broker.port)
        client.subscribe("coldchain/v1/crates/+/ack", qos=1)
        client.loop_start()
        deadline = time.monotonic() + 10
        good = 0
        while time.monotonic() < deadline:
            good = sum(1 for c, seq in self.fleet.seq.items() if acks.get(c) == seq)
            if good == len(self.fleet.seq):
                break
            time.sleep(0.2)
        client.disconnect()
        client.loop_stop()
        return good

    def figures(self) -> dict[str, Any]:
        """Everything measured, and the checks."""
        a, fleet, influx = self.args, self.fleet, self.influx
        assert fleet is not None
        per_crate = influx.rows("SELECT COUNT(value_c), MAX(seq) FROM temperature GROUP BY crate", DB)
        distinct = influx.rows("SELECT COUNT(DISTINCT(seq)) FROM temperature GROUP BY crate", DB)
        distinct_by = {r["crate"]: r["count"] for r in distinct}
        wrong = [
            r["crate"]
            for r in per_crate
            if not r["count"] == r["max"] == distinct_by.get(r["crate"]) == fleet.seq.get(str(r["crate"]))
        ]
        wrong += [c for c in fleet.seq if c not in {r["crate"] for r in per_crate}]
        gaps = influx.rows("SELECT COUNT(missing) FROM gap", DB)
        alarms = {
            state: influx.rows(f"SELECT COUNT(id) FROM alarm WHERE state = '{state}' GROUP BY rule", DB)
            for state in ("active", "cleared")
        }
        landed = self.landed() or 0
        marks, s = self.marks, self.samples

        def phase(name: str, key: str) -> list[float]:
            return [x[key] for x in s if x["phase"] == name and x[key] is not None]

        before, during = phase("lead-in", "gw_rss_mb"), phase("outage", "gw_rss_mb")
        after = phase("lead-out", "gw_rss_mb") + phase("drain", "gw_rss_mb")
        broker_rss = [x["broker_rss_mb"] for x in s]
        backlog = self.acked_at_back - self.landed_at_back

        def since_back(mark: str) -> float | None:
            return round(marks[mark] - marks["back"], 1) if mark in marks else None

        drain_s, first_write_s = since_back("drained"), since_back("first_write")
        writing_s = drain_s - first_write_s if drain_s is not None and first_write_s is not None else 0
        log_text = self.gateway.log.read_text(errors="replace") if self.gateway else ""
        result: dict[str, Any] = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "rate": a.rate,
            "crates": a.crates,
            "outage_s": round(marks["back"] - marks["down"], 1),
            "published": fleet.published,
            "acked": fleet.acked,
            "landed": landed,
            "crates_wrong": len(wrong),
            "gap_points": int(gaps[0]["count"]) if gaps else 0,  # type: ignore[call-overload]
            "rejected": self.health().get("rejected"),
            "backlog_msgs": backlog,
            "first_write_after_return_s": first_write_s,
            "drain_s": drain_s,
            "drain_msgs_per_s": round(backlog / writing_s) if writing_s > 0 else None,
            "gw_rss_before_mb": max(before, default=0.0),
            "gw_rss_outage_start_mb": during[0] if during else None,
            "gw_rss_outage_end_mb": during[-1] if during else None,
            "gw_rss_outage_max_mb": max(during, default=0.0),
            "gw_rss_after_max_mb": max(after, default=0.0),
            "gw_rss_end_mb": after[-1] if after else None,
            # messages held un-acknowledged, sampled once a second, and the gateway's own maximum (held_max)
            "gw_queue_depth_max": max((x["queue_depth"] for x in s if x["queue_depth"] is not None), default=None),
            "gw_held_max": self.health().get("held_max"),
            "gw_cpu_outage_pct": round(sum(phase("outage", "gw_cpu_pct")) / max(len(during), 1), 1),
            "broker_rss_before_mb": phase("lead-in", "broker_rss_mb")[-1] if before else None,
            "broker_rss_max_mb": max(broker_rss, default=0.0),
            "broker_rss_end_mb": broker_rss[-1] if broker_rss else None,
            "gw_duplicates_seen": self.health().get("duplicates"),
            "gw_write_failures": self.health().get("write_failures"),
            "gw_log_errors": sum(1 for line in log_text.splitlines() if " ERROR " in line),
            "alarm_points": {f"{r['rule']} {state}": r["count"] for state, rows in alarms.items() for r in rows},
            "storage_acks_at_last_seq": self.storage_acks(),
            "broker": self.broker_settings,
        }
        failures = []
        if result["landed"] != result["acked"] or fleet.published != result["acked"]:
            failures.append(f"landed {landed} != PUBACKed {result['acked']} (published {fleet.published})")
        if wrong:
            failures.append(f"{len(wrong)} crates whose count/max seq/distinct seqs differ, e.g. {wrong[:5]}")
        if result["gap_points"]:
            failures.append(f"{result['gap_points']} gap points")
        if result["storage_acks_at_last_seq"] != len(fleet.crates):
            failures.append(f"storage acks at the last seq for {result['storage_acks_at_last_seq']} crates only")
        if result["gw_rss_outage_max_mb"] > result["gw_rss_before_mb"] + a.rss_slack:
            failures.append(
                f"gateway RSS grew during the outage: {result['gw_rss_before_mb']} -> "
                f"{result['gw_rss_outage_max_mb']} MB (slack {a.rss_slack} MB)"
            )
        if result["gw_rss_after_max_mb"] > result["gw_rss_before_mb"] + a.rss_slack:
            failures.append(
                f"gateway RSS grew while the backlog drained: {result['gw_rss_before_mb']} -> "
                f"{result['gw_rss_after_max_mb']} MB (slack {a.rss_slack} MB)"
            )
        if drain_s is None:
            failures.append("the backlog did not drain")
        # the gateway reads no more while twice its window is held (mosquitto 2.0.11 overruns the window
        # after an acknowledgement)
        if (result["gw_held_max"] or 0) > 2 * RECEIVE_MAXIMUM:
            failures.append(
                f"the gateway held {result['gw_held_max']} messages at once (Receive Maximum {RECEIVE_MAXIMUM}): "
                "memory grows with the backlog while it drains"
            )
        result["ok"], result["failures"] = not failures, failures
        return result

    def stop(self) -> None:
        """Stop what we started, in reverse order."""
        if self.fleet is not None:
            self.fleet.close()
        if self.gateway is not None:
            self.gateway.stop()
        self.influx.stop()
        self.broker.stop()


def markdown_row(r: dict[str, Any]) -> str:
    """One row of the RESULTS.md table."""
    return (
        f"| {r['outage_s']:.0f} s | {r['crates']} × {r['rate'] / r['crates']:g}/s | {r['acked']:,} | {r['landed']:,} "
        f"| {r['crates_wrong']} | {r['gw_rss_before_mb']:.1f} / {r['gw_rss_outage_max_mb']:.1f} / "
        f"{r['gw_rss_after_max_mb']:.1f} | {r['broker_rss_before_mb']} → {r['broker_rss_max_mb']:.1f} "
        f"| {r['backlog_msgs']:,} | {r['first_write_after_return_s']} / {r['drain_s']} |"
    )


def main() -> int:
    """Parse options, run once, print the figures; 1 when a check failed."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=200.0, help="telemetry messages/s, all crates together")
    p.add_argument("--crates", type=int, default=200)
    p.add_argument("--lead-in", type=float, default=60.0, help="seconds of normal ingest before influxd stops")
    p.add_argument("--outage", type=float, default=600.0, help="seconds influxd stays down")
    p.add_argument("--lead-out", type=float, default=60.0, help="seconds of publishing after influxd returned")
    p.add_argument("--drain-timeout", type=float, default=600.0, help="longest wait for the backlog to land")
    p.add_argument("--rss-slack", type=float, default=10.0, help="MB the gateway may grow (outage, drain)")
    p.add_argument("--kill", action="store_true", help="SIGKILL influxd instead of SIGTERM")
    p.add_argument("--json", type=Path, help="also write the result (and every sample) to this file")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data) for a post-mortem")
    a = p.parse_args()
    if a.rate <= 0 or a.crates <= 0 or min(a.lead_in, a.outage, a.lead_out) < 5:
        p.error("rate and crates must be positive, lead-in, outage and lead-out at least 5 s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop what we started (finally) on kill too
    workdir = Path(tempfile.mkdtemp(prefix="coldchain-outage-"))
    run = Outage(a, workdir)
    queue_limit = int(run.broker_settings.get("max_queued_messages", "1000"))
    if a.rate * (a.outage + 120) > queue_limit:
        print(f"warning: the broker queues at most {queue_limit} messages per session: this outage would overflow it")
    try:
        result = run.run()
    finally:
        run.stop()
        if a.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))
    print(markdown_row(result))
    for failure in result["failures"]:
        print(f"FAILED: {failure}", file=sys.stderr)
    if a.json:
        a.json.write_text(json.dumps({"result": result, "marks": run.marks, "samples": run.samples}, indent=1))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
