/**
 * `tinykv-server --check-disk`: how long a small synced write takes on the data dir's disk, the
 * cost every acknowledged write pays once per store-loop turn. Thresholds follow etcd's advice
 * for its WAL (p99 of fdatasync under 10 ms); a store on a slower disk works, only slower.
 */
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

export interface DiskCheckResult {
  dir: string;
  writes: number;
  blockBytes: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  verdict: "fit" | "slow" | "unfit";
  advice: string;
}

/** etcd: "the 99th percentile of wal_fsync_duration_seconds should be less than 10 ms". */
const FIT_P99_MS = 10;
/** Past this a write waits longer for its disk than for everything else together. */
const SLOW_P99_MS = 50;

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Appends `writes` blocks of `blockBytes` to a scratch file in `dir`, each followed by fdatasync. */
export function checkDisk(dir: string, writes = 200, blockBytes = 4096): DiskCheckResult {
  const file = join(dir, `.tinykv-disk-check-${process.pid}`);
  const block = Buffer.alloc(blockBytes, 0x5a);
  const ms: number[] = [];
  const fd = openSync(file, "w");
  try {
    for (let i = 0; i < writes; i++) {
      const t = performance.now();
      writeSync(fd, block);
      fdatasyncSync(fd);
      ms.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  ms.sort((a, b) => a - b);
  const p99Ms = percentile(ms, 0.99);
  const verdict = p99Ms < FIT_P99_MS ? "fit" : p99Ms < SLOW_P99_MS ? "slow" : "unfit";
  const advice =
    verdict === "fit"
      ? `fit: p99 synced write under ${FIT_P99_MS} ms`
      : verdict === "slow"
        ? `slow: p99 synced write ${p99Ms.toFixed(1)} ms (etcd advises under ${FIT_P99_MS} ms); writes will wait on this disk — use an SSD or a less busy disk`
        : `unfit: p99 synced write ${p99Ms.toFixed(1)} ms; every write pays this and Raft heartbeats may miss their deadlines — move the data dir to an SSD`;
  return { dir, writes, blockBytes, p50Ms: percentile(ms, 0.5), p99Ms, maxMs: ms[ms.length - 1]!, verdict, advice };
}

export function describeDiskCheck(r: DiskCheckResult): string {
  return [
    `disk check of ${r.dir}: ${r.writes} synced writes of ${r.blockBytes} B`,
    `  fdatasync latency p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, max ${r.maxMs.toFixed(2)} ms`,
    `  ${r.advice}`,
  ].join("\n");
}
