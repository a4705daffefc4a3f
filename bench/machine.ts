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
    return undefined;
  }
}

/** Busy share of all CPUs between two samples, 0..1. */
export function busyShare(a: CpuSample | undefined, b: CpuSample | undefined): number | undefined {
  if (!a || !b || b.total <= a.total) return undefined;
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}
