#!/usr/bin/env bash
# bench/bench_gateway.sh: the peer benchmark (../shared/peer-bench) with this project's gateway in the
# same run, so every gateway figure sits beside Node-RED's and the broker's and InfluxDB's ceilings
# measured minutes apart on the same machine. ~7 minutes on 2 cores.
#   bench/bench_gateway.sh                      everything: limits, Node-RED, gateway (report in bench/results/gateway)
#   GATEWAY_ONLY=1 bench/bench_gateway.sh       only the gateway rows (services + bench_sut.sh), ~2 minutes
# Env: PEER_BENCH (default ../shared/peer-bench), BENCH_HOME (default /tmp/coldchain-peer-bench: the
# harness's venv and Node-RED install; keeps the shared folder read-only), RESULTS_DIR.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEER=$(cd "${PEER_BENCH:-$ROOT/../shared/peer-bench}" && pwd)
export BENCH_HOME=${BENCH_HOME:-/tmp/coldchain-peer-bench}
export RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results/gateway}
mkdir -p "$RESULTS_DIR"
rm -f "$RESULTS_DIR"/gateway-state.sqlite*   # a fresh gateway: no crate state from an earlier run
GATEWAY_CMD="$ROOT/.venv/bin/python -m gateway --config $ROOT/bench/gateway.toml --log-level WARNING"
cd "$ROOT"   # python -m gateway imports the project from here
uptime
if [[ -z "${GATEWAY_ONLY:-}" ]]; then
  GATEWAY_CMD="$GATEWAY_CMD" GATEWAY_READY='subscribed' "$PEER/run_all.sh"
else
  [[ -x "$BENCH_HOME/.venv/bin/python" ]] || { python3 -m venv "$BENCH_HOME/.venv" && "$BENCH_HOME/.venv/bin/python" -m pip install -q 'paho-mqtt==2.2.0'; }
  SVC=$(mktemp -d /tmp/coldchain-gw-bench.XXXXXX); RES="$SVC/results.jsonl"
  "$PEER/services.sh" start "$SVC"
  trap '"$PEER/services.sh" stop "$SVC"' EXIT
  RATES=${RATES:-"1000 5000 10000 max max-c"} "$PEER/bench_sut.sh" gateway "$SVC" "$RES" subscribed -- bash -c "exec $GATEWAY_CMD"
  STAMP=$(date +%Y%m%d-%H%M)
  cp "$RES" "$RESULTS_DIR/gateway-only-$STAMP.jsonl"
  "$BENCH_HOME/.venv/bin/python" "$PEER/report.py" "$RES" --out "$RESULTS_DIR/gateway-only-$STAMP.md"
  cat "$RESULTS_DIR/gateway-only-$STAMP.md"
fi
