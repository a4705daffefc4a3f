/**
 * Prints two bench JSON result files side by side with ratios (second / first).
 *   node dist/bench/compare.js etcd.json tinykv.json
 */
import { readFileSync } from "node:fs";
import type { Row as ReportRow } from "./report.js";

/** A row as run.ts wrote it to its JSON file (older files may lack the optional fields). */
type Row = Pick<
  ReportRow,
  | "target"
  | "workload"
  | "opsPerSec"
  | "p50Ms"
  | "p99Ms"
  | "p999Ms"
  | "maxMs"
  | "errors"
  | "machineBusy"
  | "clientCpuCores"
  | "clientCpuMsPerOp"
  | "serverCpuMsPerOp"
  | "otherCpuCores"
>;
interface Doc {
  target: string;
  config: Record<string, unknown>;
  results: Row[];
}

const [fa, fb] = process.argv.slice(2);
if (!fa || !fb) {
  process.stderr.write("usage: compare BASE.json OTHER.json\n");
  process.exit(2);
}
const A = JSON.parse(readFileSync(fa, "utf8")) as Doc;
const B = JSON.parse(readFileSync(fb, "utf8")) as Doc;
const f = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const head = [
  "workload",
  `${A.target} ops/s`,
  `${B.target} ops/s`,
  "ops ratio",
  `${A.target} p50`,
  `${B.target} p50`,
  `${A.target} p99`,
  `${B.target} p99`,
  "p99 ratio",
  `${A.target} srv ms/op`,
  `${B.target} srv ms/op`,
  "others cores",
  "errors",
];
const rows: string[][] = [];
for (const a of A.results) {
  const b = B.results.find((r) => r.workload === a.workload);
  if (!b) continue;
  rows.push([
    a.workload,
    String(a.opsPerSec),
    String(b.opsPerSec),
    a.opsPerSec > 0 ? `${(b.opsPerSec / a.opsPerSec).toFixed(2)}x` : "-",
    f(a.p50Ms),
    f(b.p50Ms),
    f(a.p99Ms),
    f(b.p99Ms),
    a.p99Ms > 0 ? `${(b.p99Ms / a.p99Ms).toFixed(2)}x` : "-",
    a.serverCpuMsPerOp?.toFixed(3) ?? "",
    b.serverCpuMsPerOp?.toFixed(3) ?? "",
    a.otherCpuCores === undefined && b.otherCpuCores === undefined
      ? ""
      : `${a.otherCpuCores?.toFixed(2) ?? "-"}/${b.otherCpuCores?.toFixed(2) ?? "-"}`,
    `${a.errors}/${b.errors}`,
  ]);
}
const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (c: string[]) =>
  "| " + c.map((x, i) => (i === 0 ? x.padEnd(w[i]!) : x.padStart(w[i]!))).join(" | ") + " |";
const c = A.config;
process.stdout.write(
  `\n== ${B.target} vs ${A.target}: concurrency ${c.concurrency}, value ${c.valueSize} B, keys ${c.keys}, ${c.distribution}, ${c.durationS} s (+${c.warmupS} s warm-up), ${c.workers} worker threads x ${c.channels} channel(s)/endpoint; latencies in ms; ratio = ${B.target}/${A.target} ==\n`,
);
process.stdout.write(
  [
    line(head),
    "|" + w.map((n, i) => "-".repeat(n + 1) + (i === 0 ? "-" : ":")).join("|") + "|",
    ...rows.map(line),
  ].join("\n") + "\n",
);
