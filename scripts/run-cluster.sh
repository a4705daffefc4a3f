#!/usr/bin/env bash
# Starts a local cluster: tinyscheduler + 3 tinykv-server stores on loopback, data under ./data.
# Ctrl-C stops them all. Override with DATA=dir STORES=n LOG_LEVEL=level.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DATA:-data}"
STORES="${STORES:-3}"
export LOG_LEVEL="${LOG_LEVEL:-info}"
mkdir -p "$DATA/logs"
pids=()
stopping=""
stop() {
  [[ -n "$stopping" ]] && return
  stopping=1
  trap - INT TERM EXIT
  echo
  echo "stopping the cluster..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped. Data is kept under $DATA (delete it for a fresh cluster)."
}
trap stop INT TERM EXIT

node dist/src/cli/tinyscheduler.js --addr 127.0.0.1:2379 --data-dir "$DATA/scheduler" --status-addr 127.0.0.1:2381 \
  >"$DATA/logs/scheduler.log" 2>&1 &
pids+=($!)
sleep 0.5
for i in $(seq 1 "$STORES"); do
  port=$((20160 + i - 1))
  node dist/src/cli/tinykv-server.js --path "$DATA/store$i" --addr "127.0.0.1:$port" --scheduler 127.0.0.1:2379 \
    >"$DATA/logs/store$i.log" 2>&1 &
  pids+=($!)
done

# Wait (bounded) until the first region has a leader, so the commands printed below work at once.
ready=""
for _ in $(seq 1 60); do
  if node dist/src/cli/tinykv-ctl.js --timeout 1000 regions 2>/dev/null | grep -Eq '@store[0-9]+ *$'; then ready=1; break; fi
  sleep 0.5
done
[[ -n "$ready" ]] || echo "warning: the cluster has no region leader after 30 s; see $DATA/logs/" >&2

cat <<INFO
tinykv-ts local cluster
  dashboard   http://127.0.0.1:2381/
  scheduler   127.0.0.1:2379   (status: http://127.0.0.1:2381/status, metrics: http://127.0.0.1:2381/metrics)
$(for i in $(seq 1 "$STORES"); do echo "  store $i     127.0.0.1:$((20160 + i - 1))   data: $DATA/store$i   metrics: http://127.0.0.1:$((20180 + i - 1))/metrics"; done)
  logs        $DATA/logs/

Try it (in another terminal):
  node dist/src/cli/tinykv-ctl.js put hello world
  node dist/src/cli/tinykv-ctl.js get hello
  node dist/src/cli/tinykv-ctl.js regions
  node dist/src/cli/tinykv-ctl.js          # interactive shell

Ctrl-C stops everything.
INFO

# Exit (and stop the rest) if any process dies.
wait -n "${pids[@]}" || true
[[ -n "$stopping" ]] || echo "a cluster process exited; stopping the rest (see $DATA/logs/)" >&2
