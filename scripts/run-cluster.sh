#!/usr/bin/env bash
# Starts a local cluster: tinyscheduler + 3 tinykv-server stores on loopback, data under ./data.
# Ctrl-C stops them all. Override with DATA=dir STORES=n LOG_LEVEL=level.
# SCHEDULERS=3 (or 5) starts a replicated scheduler: member i serves clients on 2379+10(i-1),
# its peers on 2380+10(i-1), its status on 2381+10(i-1) (only the leader's answers).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DATA:-data}"
STORES="${STORES:-3}"
SCHEDULERS="${SCHEDULERS:-1}"
export LOG_LEVEL="${LOG_LEVEL:-info}"
mkdir -p "$DATA/logs"
pids=()
scheduler_pids=()
store_pids=()
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

if [[ "$SCHEDULERS" == 1 ]]; then
  SCHEDULER_ADDRS=127.0.0.1:2379
  node dist/src/cli/tinyscheduler.js --addr 127.0.0.1:2379 --data-dir "$DATA/scheduler" --status-addr 127.0.0.1:2381 \
    >"$DATA/logs/scheduler.log" 2>&1 &
  pids+=($!)
  scheduler_pids+=($!)
else
  initial=""
  SCHEDULER_ADDRS=""
  for i in $(seq 1 "$SCHEDULERS"); do
    initial+="${initial:+,}s$i=127.0.0.1:$((2380 + 10 * (i - 1)))"
    SCHEDULER_ADDRS+="${SCHEDULER_ADDRS:+,}127.0.0.1:$((2379 + 10 * (i - 1)))"
  done
  for i in $(seq 1 "$SCHEDULERS"); do
    base=$((2379 + 10 * (i - 1)))
    node dist/src/cli/tinyscheduler.js --name "s$i" --initial-cluster "$initial" --addr "127.0.0.1:$base" \
      --data-dir "$DATA/scheduler-s$i" --status-addr "127.0.0.1:$((base + 2))" >"$DATA/logs/scheduler-s$i.log" 2>&1 &
    pids+=($!)
    scheduler_pids+=($!)
  done
fi
sleep 0.5
for i in $(seq 1 "$STORES"); do
  port=$((20160 + i - 1))
  node dist/src/cli/tinykv-server.js --path "$DATA/store$i" --addr "127.0.0.1:$port" --scheduler "$SCHEDULER_ADDRS" \
    >"$DATA/logs/store$i.log" 2>&1 &
  pids+=($!)
  store_pids+=($!)
done

# Wait (bounded) until the first region has a leader, so the commands printed below work at once.
ready=""
for _ in $(seq 1 60); do
  if node dist/src/cli/tinykv-ctl.js --scheduler "$SCHEDULER_ADDRS" --timeout 1000 regions 2>/dev/null | grep -Eq '@store[0-9]+ *$'; then ready=1; break; fi
  sleep 0.5
done
[[ -n "$ready" ]] || echo "warning: the cluster has no region leader after 30 s; see $DATA/logs/" >&2

if [[ "$SCHEDULERS" == 1 ]]; then
  SCHEDULER_INFO="  dashboard   http://127.0.0.1:2381/
  scheduler   127.0.0.1:2379   (status: http://127.0.0.1:2381/status, metrics: http://127.0.0.1:2381/metrics)"
  CTL="node dist/src/cli/tinykv-ctl.js"
else
  SCHEDULER_INFO="  scheduler   $SCHEDULERS members: $SCHEDULER_ADDRS (the leader's status port, 2381+10(i-1), serves
              the dashboard and /status; the others answer 503 naming the leader)"
  STATUS_ADDRS=""
  for i in $(seq 1 "$SCHEDULERS"); do STATUS_ADDRS+="${STATUS_ADDRS:+,}127.0.0.1:$((2381 + 10 * (i - 1)))"; done
  CTL="node dist/src/cli/tinykv-ctl.js --scheduler $SCHEDULER_ADDRS --status $STATUS_ADDRS"
fi

cat <<INFO
tinykv-ts local cluster
$SCHEDULER_INFO
$(for i in $(seq 1 "$STORES"); do echo "  store $i     127.0.0.1:$((20160 + i - 1))   data: $DATA/store$i   metrics: http://127.0.0.1:$((20180 + i - 1))/metrics"; done)
  logs        $DATA/logs/

Try it (in another terminal):
  $CTL put hello world
  $CTL get hello
  $CTL regions
  $CTL          # interactive shell

Ctrl-C stops everything.
INFO

# Exit (and stop the rest) if a store dies or every scheduler member did: a replicated scheduler
# goes on without a minority of its members (kill its leader to watch another take over).
while [[ -z "$stopping" ]]; do
  sleep 1
  schedulers_up=0
  for pid in "${scheduler_pids[@]}"; do kill -0 "$pid" 2>/dev/null && schedulers_up=$((schedulers_up + 1)); done
  store_down=""
  for pid in "${store_pids[@]}"; do kill -0 "$pid" 2>/dev/null || store_down=1; done
  if [[ "$schedulers_up" == 0 || -n "$store_down" ]]; then
    echo "a cluster process exited; stopping the rest (see $DATA/logs/)" >&2
    break
  fi
  if [[ "$schedulers_up" -lt "${#scheduler_pids[@]}" && -z "${told:-}" ]]; then
    told=1
    echo "a scheduler member exited; $schedulers_up of ${#scheduler_pids[@]} still run (see $DATA/logs/)" >&2
  fi
done
