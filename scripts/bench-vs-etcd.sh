#!/usr/bin/env bash
# Side-by-side benchmark: a fresh local 3-member etcd, then a fresh local tinykv cluster
# (scheduler + 3 stores), same load generator, same workloads and parameters; prints both tables
# and the tinykv/etcd ratios. Traffic stays on 127.0.0.1. See bench/README.md.
#
#   make bench-vs-etcd
#   WORKLOADS=put,get DURATION=20 CONCURRENCY=64 bash scripts/bench-vs-etcd.sh
#   BENCH_EXTRA="--workers 2 --channels 1" bash scripts/bench-vs-etcd.sh
#   SCHED_PORT=24790 STORE_PORT=21460 ETCD_PORT=2390 bash scripts/bench-vs-etcd.sh   (if ports are taken)
set -euo pipefail
cd "$(dirname "$0")/.."

WORKLOADS=${WORKLOADS:-put,get,mixed}
CONCURRENCY=${CONCURRENCY:-64}
VALUE_SIZE=${VALUE_SIZE:-256}
KEYS=${KEYS:-10000}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
DISTRIBUTION=${DISTRIBUTION:-uniform}
OUT=${OUT:-bench/results}
BENCH_EXTRA=${BENCH_EXTRA:-}
ETCD_PORT=${ETCD_PORT:-2390}          # etcd client ports ETCD_PORT..+2, peer ports +100
SCHED_PORT=${SCHED_PORT:-2379}        # tinykv scheduler
STORE_PORT=${STORE_PORT:-20160}       # tinykv stores STORE_PORT..+2

# etcd: Debian 12 ships it as etcd-server (/usr/bin/etcd).
ETCD_BIN=${ETCD_BIN:-$(command -v etcd || true)}
if [[ -z "$ETCD_BIN" ]]; then
  echo "etcd not found; installing Debian's etcd-server" >&2
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y etcd-server
  # The package enables a systemd unit on 2379 where one runs; stop it so it can't collide.
  if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
    $SUDO systemctl stop etcd || true
  fi
  ETCD_BIN=$(command -v etcd)
fi
echo "etcd: $("$ETCD_BIN" --version | head -1)" >&2

if [[ ! -d node_modules ]]; then npm ci --no-audit --no-fund; fi
npx tsc -p .

mkdir -p "$OUT"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
common=(--workload "$WORKLOADS" --concurrency "$CONCURRENCY" --value-size "$VALUE_SIZE" --keys "$KEYS"
        --duration "$DURATION" --warmup "$WARMUP" --distribution "$DISTRIBUTION" --start-cluster)
# shellcheck disable=SC2206
extra=($BENCH_EXTRA)

echo "== etcd (3 members, default durability, linearizable reads) ==" >&2
node dist/bench/run.js --target etcd --etcd-bin "$ETCD_BIN" --etcd-port "$ETCD_PORT" "${common[@]}" "${extra[@]}" --json "$OUT/etcd-$stamp.json"
echo "== tinykv (scheduler + 3 stores) ==" >&2
node dist/bench/run.js --target tinykv --scheduler-port "$SCHED_PORT" --store-port "$STORE_PORT" "${common[@]}" "${extra[@]}" --json "$OUT/tinykv-$stamp.json"

node dist/bench/compare.js "$OUT/etcd-$stamp.json" "$OUT/tinykv-$stamp.json"
