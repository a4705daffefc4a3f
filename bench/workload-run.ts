/**
 * One measured workload: the workers run it through the warmup and the measured window while the
 * main thread prints per-second progress, then latencies and CPU use become the result rows.
 */
import type { RecordableHistogram } from "node:perf_hooks";
import { cpus } from "node:os";
import type { Target } from "./drivers/index.js";
import { busyShare, cpuSample, procsCpuSeconds } from "./machine.js";
import type { Row } from "./report.js";
import { fmtMs, newHist, rowOf } from "./report.js";
import type { WorkerHandle } from "./worker-handle.js";
import type { OpKind, Workload } from "./worker.js";

/** What every workload of one bench run shares (the run's flags). */
export interface RunSettings {
  target: Target;
  /** Unmeasured seconds before the measured window, and the window's length. */
  warmupS: number;
  durationS: number;
  /** Deadline of one request, ms: the workers may take this long past the window to drain. */
  timeoutMs: number;
}

/** Drives `handles` through `workload`; `procs` are the started cluster's processes (name -> pid) to measure. */
export async function runWorkload(
  workload: Workload,
  handles: WorkerHandle[],
  procs: Record<string, number>,
  run: RunSettings,
): Promise<Row[]> {
  const { target, warmupS, durationS, timeoutMs } = run;
  const serverPids = Object.values(procs);
  const hists = new Map<OpKind, RecordableHistogram>();
  const total = newHist();
  const errors: Record<string, number> = {};
  let secHist = newHist();
  let secErrors = 0;
  let measuredErrors = 0;
  for (const h of handles)
    h.onBatch = (m) => {
      for (const [kind, arr] of Object.entries(m.lat) as [OpKind, Float64Array][]) {
        let kh = hists.get(kind);
        if (m.measured && !kh) hists.set(kind, (kh = newHist()));
        for (let i = 0; i < arr.length; i++) {
          const us = Math.max(1, Math.round(arr[i]!));
          secHist.record(us);
          if (m.measured) {
            kh!.record(us);
            total.record(us);
          }
        }
      }
      for (const [k, n] of Object.entries(m.errors)) {
        secErrors += n;
        if (m.measured) {
          errors[k] = (errors[k] ?? 0) + n;
          measuredErrors += n;
        }
      }
    };
  const start = Date.now();
  const warmupEndAt = start + warmupS * 1000;
  const endAt = warmupEndAt + durationS * 1000;
  const label = `${target} ${workload}`;
  let lastTick = start;
  let cpuAtWarmupEnd:
    | {
        cpu: NodeJS.CpuUsage;
        box: ReturnType<typeof cpuSample>;
        srv: number | undefined;
        byProc: Record<string, number | undefined>;
      }
    | undefined;
  let cpuAtEnd: typeof cpuAtWarmupEnd;
  const snap = () => ({
    cpu: process.cpuUsage(),
    box: cpuSample(),
    srv: procsCpuSeconds(serverPids),
    byProc: Object.fromEntries(Object.entries(procs).map(([n, pid]) => [n, procsCpuSeconds([pid])])),
  });
  const tw = setTimeout(() => (cpuAtWarmupEnd = snap()), warmupEndAt - Date.now());
  const te = setTimeout(() => (cpuAtEnd = snap()), endAt - Date.now());
  let lastBox = cpuSample();
  const progress = setInterval(() => {
    const t = Date.now();
    const box = cpuSample();
    const busy = busyShare(lastBox, box);
    lastBox = box;
    const el = (t - start) / 1000;
    const phase = t < warmupEndAt ? "warmup" : t < endAt ? "run" : "drain";
    const rate = (secHist.count / ((t - lastTick) / 1000)).toFixed(0);
    const p = secHist.count
      ? ` p50=${fmtMs(secHist.percentile(50))} p99=${fmtMs(secHist.percentile(99))} max=${fmtMs(secHist.max)} ms`
      : "";
    process.stderr.write(
      `[${label}] ${el.toFixed(0).padStart(3)}s ${phase.padEnd(6)} ops/s=${rate.padStart(6)}${p} errors=${secErrors} (total ${measuredErrors})${busy === undefined ? "" : ` box=${Math.round(busy * 100)}%`}\n`,
    );
    secHist = newHist();
    secErrors = 0;
    lastTick = t;
  }, 1000);
  try {
    const res = await Promise.all(
      handles.map((h) =>
        h.request({ cmd: "run", workload, warmupEndAt, endAt }, warmupS * 1000 + durationS * 1000 + timeoutMs + 10_000),
      ),
    );
    for (const m of res) if (m.type !== "done") throw new Error(m.type === "fatal" ? m.message : "run failed");
  } finally {
    clearInterval(progress);
    clearTimeout(tw);
    clearTimeout(te);
  }
  const rows = [rowOf(target, durationS, workload, total, errors)];
  if (cpuAtWarmupEnd && cpuAtEnd) {
    const used = (cpuAtEnd.cpu.user - cpuAtWarmupEnd.cpu.user + cpuAtEnd.cpu.system - cpuAtWarmupEnd.cpu.system) / 1e6;
    rows[0]!.clientCpuCores = used / durationS;
    rows[0]!.machineBusy = busyShare(cpuAtWarmupEnd.box, cpuAtEnd.box);
    if (total.count > 0) {
      rows[0]!.clientCpuMsPerOp = (used * 1000) / total.count;
      if (cpuAtEnd.srv !== undefined && cpuAtWarmupEnd.srv !== undefined)
        rows[0]!.serverCpuMsPerOp = ((cpuAtEnd.srv - cpuAtWarmupEnd.srv) * 1000) / total.count;
      if (serverPids.length > 0) {
        const by: Record<string, number> = {};
        let all = true;
        for (const n of Object.keys(procs)) {
          const e = cpuAtEnd.byProc[n];
          const w = cpuAtWarmupEnd.byProc[n];
          if (e === undefined || w === undefined) all = false;
          else by[n] = Math.round(((e - w) * 1e6) / total.count) / 1000;
        }
        rows[0]!.serverCpuMsPerOpByProc = by;
        // A process that exited during the window makes the sum meaningless.
        if (!all) rows[0]!.serverCpuMsPerOp = undefined;
        const busy = rows[0]!.machineBusy;
        if (all && busy !== undefined && cpuAtEnd.srv !== undefined && cpuAtWarmupEnd.srv !== undefined)
          rows[0]!.otherCpuCores = Math.max(
            0,
            busy * cpus().length - used / durationS - (cpuAtEnd.srv - cpuAtWarmupEnd.srv) / durationS,
          );
      }
    }
  }
  if (hists.size > 1) for (const [kind, h] of hists) rows.push(rowOf(target, durationS, `${workload}:${kind}`, h, {}));
  return rows;
}
