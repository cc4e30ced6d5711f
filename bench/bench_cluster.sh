#!/usr/bin/env bash
# bench/bench_cluster.sh: the peer workload (../shared/peer-bench) through the NATS cluster with its
# JetStream gateways, beside the gateway on mosquitto, in the same run (issue 15's benchmark).
# For each system, at 10,000 msgs/s, at max (one Python publisher) and at max-c (two mosquitto_pub -l):
# the harness's measure.py row (throughput, loss, drain, alarm p50/p99) and bench/cluster_rig.py's
# cost line (CPU and RSS of every gateway and of the broker: mosquitto, or the three nodes).
# ~5 minutes on 2 cores. Results: $RESULTS_DIR/cluster-<stamp>.jsonl and .md (the harness's report).
#   bench/bench_cluster.sh
#   GATEWAYS=1 RATES="10000" bench/bench_cluster.sh
# Env: PEER_BENCH (default ../shared/peer-bench), BENCH_HOME (default /tmp/coldchain-peer-bench: the
# harness's venv; HARNESS_PY: a python with paho-mqtt 2.2 instead), VENV_PY (the project's python), RESULTS_DIR,
# GATEWAYS (2), RATES ("10000 max max-c").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEER=$(cd "${PEER_BENCH:-$ROOT/../shared/peer-bench}" && pwd)
export BENCH_HOME=${BENCH_HOME:-/tmp/coldchain-peer-bench}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results/cluster}
PY=${HARNESS_PY:-$BENCH_HOME/.venv/bin/python}
VENV_PY=${VENV_PY:-$ROOT/.venv/bin/python}
[[ -x "$VENV_PY" ]] || VENV_PY=python3
[[ -x "$PY" ]] || { python3 -m venv "$BENCH_HOME/.venv" && "$PY" -m pip install -q 'paho-mqtt==2.2.0'; }
mkdir -p "$RESULTS_DIR"
export SVC; SVC=$(mktemp -d /tmp/coldchain-cluster-bench.XXXXXX); RES="$SVC/results.jsonl"
"$PEER/services.sh" start "$SVC"
trap '"$PEER/services.sh" stop "$SVC"' EXIT
uptime
printf '{"bench": "meta", "date": "%s", "cpu": "%s x%s", "python": "%s", "load_before": "%s"}\n' \
  "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$(nproc)" \
  "$("$VENV_PY" -V | cut -d' ' -f2)" "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RES"
read -r -a rates <<< "${RATES:-10000 max max-c}"
common=(--peer "$PEER" --python "$PY" --json "$RES" --rates "${rates[@]}")
echo "== the gateway on mosquitto"
"$VENV_PY" "$ROOT/bench/cluster_rig.py" --sut mosquitto "${common[@]}"
echo "== the cluster: ${GATEWAYS:-2} JetStream gateway(s), three nats-server nodes"
"$VENV_PY" "$ROOT/bench/cluster_rig.py" --sut cluster --gateways "${GATEWAYS:-2}" "${common[@]}"
printf '{"bench": "meta_end", "date": "%s", "load_after": "%s"}\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RES"
STAMP=$(date +%Y%m%d-%H%M)
cp "$RES" "$RESULTS_DIR/cluster-$STAMP.jsonl"
"$PY" "$PEER/report.py" "$RES" --out "$RESULTS_DIR/cluster-$STAMP.md" || true
grep '"cluster_cost"' "$RES"
echo "results: $RESULTS_DIR/cluster-$STAMP.jsonl"
