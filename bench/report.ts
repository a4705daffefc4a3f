/** The benchmark's result rows: one per workload (and op kind), and the table they print as. */
import type { RecordableHistogram } from "node:perf_hooks";
import { createHistogram } from "node:perf_hooks";
import type { Target } from "./drivers/index.js";
import { LOAD_BATCH_KEYS } from "./keys.js";

export function fmtMs(us: number): string {
  const ms = us / 1000;
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

export interface Row {
  target: Target;
  workload: string;
  ops: number;
  opsPerSec: number;
  /** Keys written or read per second: opsPerSec times the keys of one op (LOAD_BATCH_KEYS for `load`). */
  keysPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  errors: number;
  errorKinds: Record<string, number>;
  /** CPU used by this load generator (all threads) during the measured window, in cores. */
  clientCpuCores?: number;
  /** CPU ms per completed op: this load generator, and the started cluster's processes (sum). */
  clientCpuMsPerOp?: number;
  serverCpuMsPerOp?: number;
  /** CPU ms per op by started process (e.g. store1, scheduler, m1). */
  serverCpuMsPerOpByProc?: Record<string, number>;
  /** Busy share of the whole machine during the measured window (client + servers + anything else). */
  machineBusy?: number;
  /** CPU cores used during the window by processes other than this client and the started cluster. */
  otherCpuCores?: number;
}

export function newHist(): RecordableHistogram {
  return createHistogram({ lowest: 1, highest: 120_000_000, figures: 3 });
}

/** One result row: the histogram's op count and percentiles over a window of `durationS`. */
export function rowOf(
  target: Target,
  durationS: number,
  workload: string,
  h: RecordableHistogram,
  errors: Record<string, number>,
): Row {
  const ops = h.count;
  const ms = (q: number) => (ops > 0 ? h.percentile(q) / 1000 : 0);
  const nerr = Object.values(errors).reduce((s, n) => s + n, 0);
  return {
    target,
    workload,
    ops,
    opsPerSec: Math.round(ops / durationS),
    keysPerSec: Math.round((ops * (workload.split(":")[0] === "load" ? LOAD_BATCH_KEYS : 1)) / durationS),
    p50Ms: ms(50),
    p99Ms: ms(99),
    p999Ms: ms(99.9),
    maxMs: ops > 0 ? h.max / 1000 : 0,
    errors: nerr,
    errorKinds: errors,
  };
}

export function table(rows: Row[]): string {
  const head = [
    "target",
    "workload",
    "ops/s",
    "keys/s",
    "p50 ms",
    "p99 ms",
    "p999 ms",
    "max ms",
    "errors",
    "client cpu",
    "cli ms/op",
    "srv ms/op",
    "box busy",
    "others",
  ];
  const body = rows.map((r) => [
    r.target,
    r.workload,
    String(r.opsPerSec),
    String(r.keysPerSec),
    fmtMs(r.p50Ms * 1000),
    fmtMs(r.p99Ms * 1000),
    fmtMs(r.p999Ms * 1000),
    fmtMs(r.maxMs * 1000),
    String(r.errors),
    r.clientCpuCores === undefined ? "" : r.clientCpuCores.toFixed(2),
    r.clientCpuMsPerOp === undefined ? "" : r.clientCpuMsPerOp.toFixed(3),
    r.serverCpuMsPerOp === undefined ? "" : r.serverCpuMsPerOp.toFixed(3),
    r.machineBusy === undefined ? "" : `${Math.round(r.machineBusy * 100)}%`,
    r.otherCpuCores === undefined ? "" : r.otherCpuCores.toFixed(2),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    "| " + cells.map((c, i) => (i < 2 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(" | ") + " |";
  return [
    line(head),
    "|" + w.map((n, i) => (i < 2 ? "-".repeat(n + 1) + "-" : "-".repeat(n + 1) + ":")).join("|") + "|",
    ...body.map(line),
  ].join("\n");
}
