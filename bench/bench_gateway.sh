#!/usr/bin/env bash
# bench/bench_gateway.sh: the peer benchmark (../shared/peer-bench) with this project's gateway in the
# same run, so every gateway figure sits beside Node-RED's and the broker's and InfluxDB's ceilings,
# measured minutes apart on the same machine. ~6 minutes on 2 cores.
#
# It runs run_all.sh's steps itself, in the same order, except step 5 (Node-RED's naive one-write-per-
# message flow): that flow logs InfluxDB errors, and run_all.sh (set -e, pipefail) then stops before
# the gateway's step. The report is the harness's own report.py.
#   bench/bench_gateway.sh                  limits + Node-RED (batched) + gateway
#   GATEWAY_ONLY=1 bench/bench_gateway.sh   only the gateway rows, ~2 minutes
# Env: PEER_BENCH (default ../shared/peer-bench), BENCH_HOME (default /tmp/coldchain-peer-bench: the
# harness's venv and Node-RED install, so the shared folder stays untouched), RESULTS_DIR.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEER=$(cd "${PEER_BENCH:-$ROOT/../shared/peer-bench}" && pwd)
export BENCH_HOME=${BENCH_HOME:-/tmp/coldchain-peer-bench}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results/gateway}
PY="$BENCH_HOME/.venv/bin/python"
mkdir -p "$RESULTS_DIR"
rm -f "$RESULTS_DIR"/gateway-state.sqlite*   # a fresh gateway: no crate state from an earlier run
GATEWAY_CMD="$ROOT/.venv/bin/python -m gateway --config $ROOT/bench/gateway.toml --log-level WARNING"
[[ -x "$PY" ]] || { python3 -m venv "$BENCH_HOME/.venv" && "$PY" -m pip install -q 'paho-mqtt==2.2.0'; }
if [[ -z "${GATEWAY_ONLY:-}" && ! -f "$BENCH_HOME/nodered/node_modules/node-red/red.js" ]]; then
  mkdir -p "$BENCH_HOME/nodered"; cp "$PEER"/nodered/package.json "$PEER"/nodered/package-lock.json "$BENCH_HOME/nodered/"
  npm ci --prefix "$BENCH_HOME/nodered" --no-audit --no-fund
fi
export SECONDS_PER_RATE=${SECONDS_PER_RATE:-10} MAX_COUNT=${MAX_COUNT:-100000}
SVC=$(mktemp -d /tmp/coldchain-gw-bench.XXXXXX); RES="$SVC/results.jsonl"
"$PEER/services.sh" start "$SVC"
trap '"$PEER/services.sh" stop "$SVC"' EXIT
uptime
cd "$PEER"
printf '{"bench": "meta", "date": "%s", "cpu": "%s x%s", "python": "%s", "load_before": "%s"}\n' \
  "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$(nproc)" \
  "$("$ROOT/.venv/bin/python" -V | cut -d' ' -f2)" "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RES"
if [[ -z "${GATEWAY_ONLY:-}" ]]; then
  echo "== broker ceiling";   "$PY" limit_broker.py --svc-dir "$SVC" --messages "${BROKER_MSGS:-150000}" --json "$RES" || true
  echo "== InfluxDB ceiling"; "$PY" limit_influx.py --svc-dir "$SVC" --points "${INFLUX_POINTS:-1000000}" --json "$RES" || true
  echo "== latency floor: broker only"
  for r in 1000 5000 10000 max; do
    if [[ $r == max ]]; then n=$MAX_COUNT; rate=0; else n=$(( r * SECONDS_PER_RATE )); rate=$r; fi
    "$PY" measure.py --label "limit: broker only" --no-influx --stamped-only --alarm-topic 'coldchain/v1/crates/+/telemetry' \
        --sut-pid "$(cat "$SVC/mosquitto.pid")" --count "$n" --rate "$rate" --alarm-every $(( n / 40 )) --json "$RES" 2>/dev/null
  done
  echo "== Node-RED, batched flow"
  NR_BATCH=1000 RATES="1000 5000 10000 max max-c" ./bench_nodered.sh "$SVC" "$RES" || true
fi
echo "== the project's gateway: $GATEWAY_CMD"
# alarms are retained by contract; the harness reuses alarm crate names across scenarios (alarm_janitor.py)
"$ROOT/.venv/bin/python" "$ROOT/bench/alarm_janitor.py" --port 18831 & JANITOR=$!
(cd "$ROOT" && RATES=${RATES:-"1000 5000 10000 max max-c"} "$PEER/bench_sut.sh" gateway "$SVC" "$RES" subscribed \
  -- bash -c "exec $GATEWAY_CMD") || true
kill "$JANITOR"; wait "$JANITOR" || true
STAMP=$(date +%Y%m%d-%H%M)
cp "$RES" "$RESULTS_DIR/gateway-$STAMP.jsonl"
"$PY" report.py "$RES" --out "$RESULTS_DIR/gateway-$STAMP.md"
echo "report: $RESULTS_DIR/gateway-$STAMP.md"
