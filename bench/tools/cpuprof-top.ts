/**
 * Summarizes a V8 .cpuprofile (from node --cpu-prof): top functions by self time, and top
 * script files by self time, plus a per-second busy timeline (to find the load window).
 *   node dist/bench/tools/cpuprof-top.js FILE [N] [FROM_S TO_S]
 * FROM_S/TO_S restrict the summary to that window, in seconds from the profile start.
 */
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, nArg, fromArg, toArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write("usage: cpuprof-top FILE [N]\n");
  process.exit(2);
}
const N = Number(nArg ?? 25);
const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const fromUs = fromArg === undefined ? 0 : Number(fromArg) * 1e6;
const toUs = toArg === undefined ? Infinity : Number(toArg) * 1e6;
const selfUs = new Map<number, number>();
const idleIds = new Set(p.nodes.filter((n) => n.callFrame.functionName === "(idle)").map((n) => n.id));
const secBusy: number[] = [];
const secAll: number[] = [];
let t = 0;
let total = 0;
for (let i = 0; i < p.samples.length; i++) {
  const d = p.timeDeltas[i] ?? 0;
  t += d;
  const sec = Math.floor(t / 1e6);
  secAll[sec] = (secAll[sec] ?? 0) + d;
  if (!idleIds.has(p.samples[i]!)) secBusy[sec] = (secBusy[sec] ?? 0) + d;
  if (t < fromUs || t >= toUs) continue;
  total += d;
  selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + d);
}
process.stdout.write(
  "busy % per second: " +
    secAll.map((a, i) => `${i}:${Math.round((100 * (secBusy[i] ?? 0)) / (a || 1))}`).join(" ") +
    "\n",
);
const fn = new Map<string, number>();
const files = new Map<string, number>();
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  const url = n.callFrame.url
    .replace(/^file:\/\//, "")
    .replace(/.*\/node_modules\//, "nm/")
    .replace(/.*\/dist\//, "dist/");
  const name = `${n.callFrame.functionName || "(anonymous)"}  ${url ? `${url}:${n.callFrame.lineNumber + 1}` : ""}`;
  fn.set(name, (fn.get(name) ?? 0) + us);
  const f = url || `(${n.callFrame.functionName})`;
  files.set(f, (files.get(f) ?? 0) + us);
}
const idle = [...fn].filter(([k]) => k.startsWith("(idle)")).reduce((s, [, v]) => s + v, 0);
const pct = (us: number) => ((100 * us) / total).toFixed(1).padStart(5) + "%";
process.stdout.write(
  `${file}${fromArg !== undefined ? ` [${fromArg}s, ${toArg ?? "end"}s)` : ""}\nwall ${(total / 1e6).toFixed(1)} s, idle ${pct(idle)}, busy ${pct(total - idle)}\n\ntop functions by self time (% of wall):\n`,
);
for (const [k, v] of [...fn].sort((x, y) => y[1] - x[1]).slice(0, N)) process.stdout.write(`${pct(v)}  ${k}\n`);
const category = (k: string): string => {
  if (/@grpc\/grpc-js|node:internal\/http2|nghttp2/.test(k)) return "gRPC + HTTP/2 (grpc-js, node:http2)";
  if (/classic-level|abstract-level|level-transcoder|module-error/.test(k))
    return "LevelDB binding (classic-level, abstract-level)";
  if (/dist\/esm\/wire|@bufbuild|dist\/src\/proto\//.test(k))
    return "protobuf encode/decode (ts-proto + @bufbuild wire)";
  if (/dist\/src\/raft\//.test(k)) return "raft library (src/raft)";
  if (/dist\/src\/kv\/raftstore\//.test(k)) return "raftstore (src/kv/raftstore)";
  if (/dist\/src\/(kv|txn)\//.test(k)) return "kv server / storage / txn (src/kv, src/txn)";
  if (/dist\/src\//.test(k)) return "other src/";
  if (/pino|thread-stream|sonic-boom/.test(k)) return "logging (pino)";
  if (/^\(garbage collector\)/.test(k)) return "garbage collector";
  if (/^\(program\)/.test(k)) return "(program): native code outside JS (libuv, syscalls, V8 runtime)";
  if (/^\(idle\)/.test(k)) return "(idle)";
  if (/node:internal\/(buffer|streams|stream_base|timers|process|events)|node:(buffer|events)/.test(k))
    return "node core: buffers, streams, timers, events, microtasks";
  return "other";
};
const cats = new Map<string, number>();
for (const [k, v] of fn) cats.set(category(k), (cats.get(category(k)) ?? 0) + v);
const busyUs = total - idle;
process.stdout.write(`\nby component (self time, % of busy):\n`);
for (const [k, v] of [...cats].filter(([k]) => k !== "(idle)").sort((x, y) => y[1] - x[1]))
  process.stdout.write(`${((100 * v) / (busyUs || 1)).toFixed(1).padStart(5)}%  ${k}\n`);
process.stdout.write(`\ntop files by self time:\n`);
for (const [k, v] of [...files].sort((x, y) => y[1] - x[1]).slice(0, 15)) process.stdout.write(`${pct(v)}  ${k}\n`);
