/** Machine-level CPU accounting from /proc/stat (Linux), to show how busy the box was. */
import { readFileSync } from "node:fs";

export interface CpuSample {
  idle: number;
  total: number;
}

export function cpuSample(): CpuSample | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { idle, total: f.reduce((s, n) => s + n, 0) };
  } catch {
    return undefined; // no /proc (not Linux): the machine-load column stays empty
  }
}

/** Busy share of all CPUs between two samples, 0..1. */
export function busyShare(a: CpuSample | undefined, b: CpuSample | undefined): number | undefined {
  if (!a || !b || b.total <= a.total) return undefined;
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}

/** user+system CPU seconds of a process (Linux /proc/PID/stat; clock ticks assumed 100 Hz). */
export function procCpuSeconds(pid: number): number | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    // After "pid (comm) ", field 3 (state) is index 0, so utime (14) is index 11, stime (15) index 12.
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return undefined; // the process has exited (or no /proc): its CPU column stays empty
  }
}

/** Sum of procCpuSeconds over pids (undefined if none readable). */
export function procsCpuSeconds(pids: number[]): number | undefined {
  let sum = 0;
  let any = false;
  for (const p of pids) {
    const v = procCpuSeconds(p);
    if (v !== undefined) {
      sum += v;
      any = true;
    }
  }
  return any ? sum : undefined;
}
