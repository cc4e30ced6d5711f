#!/usr/bin/env bash
# bench/bench_cluster.sh: the peer workload (../shared/peer-bench) through the NATS cluster with its
# JetStream gateways, beside the gateway on mosquitto, in the same run (issue 15's benchmark).
# Each system idle for 10 s, then the harness's measure.py rows (throughput, loss, drain, alarm p50/p99)
# with bench/cluster_rig.py's cost line beside each (CPU and RSS of every gateway and of the broker:
# mosquitto, or the three nodes). The gateway on mosquitto at 1,000 and 10,000 msgs/s, max (one Python
# publisher) and max-c (two mosquitto_pub -l); the cluster, far slower, at 200 msgs/s and max (20,000
# messages; each run bounded at 240 s). ~6 minutes on 2 shared cores.
# Results: $RESULTS_DIR/cluster-<stamp>.jsonl and .md.
#   bench/bench_cluster.sh
#   GATEWAYS=1 CLUSTER_RATES="1000 max" bench/bench_cluster.sh
# Env: PEER_BENCH (default ../shared/peer-bench), BENCH_HOME (default /tmp/coldchain-peer-bench: the
# harness's venv; HARNESS_PY: a python with paho-mqtt 2.2 instead), VENV_PY (the project's python), RESULTS_DIR,
# GATEWAYS (2), MOSQUITTO_RATES ("1000 10000 max max-c"), CLUSTER_RATES ("200 max"), CLUSTER_MAX_COUNT (20000).
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
read -r -a mosquitto_rates <<< "${MOSQUITTO_RATES:-1000 10000 max max-c}"
read -r -a cluster_rates <<< "${CLUSTER_RATES:-200 max}"
common=(--peer "$PEER" --python "$PY" --json "$RES")
echo "== the gateway on mosquitto"
"$VENV_PY" "$ROOT/bench/cluster_rig.py" --sut mosquitto "${common[@]}" --rates "${mosquitto_rates[@]}"
echo "== the cluster: ${GATEWAYS:-2} JetStream gateway(s), three nats-server nodes"
"$VENV_PY" "$ROOT/bench/cluster_rig.py" --sut cluster --gateways "${GATEWAYS:-2}" "${common[@]}" \
  --rates "${cluster_rates[@]}" --max-count "${CLUSTER_MAX_COUNT:-20000}" --warmup 2000 --timeout 240
printf '{"bench": "meta_end", "date": "%s", "load_after": "%s"}\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RES"
STAMP=$(date +%Y%m%d-%H%M)
cp "$RES" "$RESULTS_DIR/cluster-$STAMP.jsonl"
"$PY" "$PEER/report.py" "$RES" --out "$RESULTS_DIR/cluster-$STAMP.md" || true
grep '"cluster_cost"' "$RES"
echo "results: $RESULTS_DIR/cluster-$STAMP.jsonl"
