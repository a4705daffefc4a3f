#!/usr/bin/env node
/**
 * Lines up the hop trace (src/util/hop-trace.ts) of a 1-client write benchmark, write by write,
 * across the client, the leader and the followers, and prints each hop's time since the client
 * sent the write (median, p90), in the order the hops happen, and one sample write; then where
 * the slowest 1% of writes lose their time: each hop's step in them against its step in all.
 *
 *   TINYKV_HOP_TRACE=/tmp/trace node dist/bench/run.js --target tinykv --start-cluster \
 *     --workload put --concurrency 1 --workers 1
 *   node dist/bench/tools/hop-trace.js /tmp/trace [SKIP_FIRST_S]
 *
 * Only meaningful at one client: a write's client and server events are the ones between its
 * send and its answer, and its raft events carry the index the leader proposed it at.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface TraceEvent {
  t: number;
  hop: string;
  index: bigint | undefined;
  commit: bigint | undefined;
}

interface Proc {
  name: string;
  events: TraceEvent[];
}

/** Hops carrying no index that still belong to one write (client and rpc layers). */
const UNINDEXED = new Set(["client.send", "client.write", "client.recv", "srv.recv", "srv.write", "peer.queued"]);
/** How long after its send a write's events are looked for (a follower applies after the answer). */
const WINDOW_MS = 100;

function parse(file: string): TraceEvent[] {
  const out: TraceEvent[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const [t, hop, index, commit] = line.split(" ");
    out.push({
      t: Number(t),
      hop: hop!,
      index: index === "-" || index === undefined ? undefined : BigInt(index),
      commit: commit === "-" || commit === undefined ? undefined : BigInt(commit),
    });
  }
  return out.sort((a, b) => a.t - b.t);
}

/** The first event at or after `from` (binary search start) for which `ok` holds, within the window. */
function first(events: TraceEvent[], from: number, until: number, ok: (e: TraceEvent) => boolean): TraceEvent[] {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (events[mid]!.t < from) lo = mid + 1;
    else hi = mid;
  }
  const seen = new Map<string, TraceEvent>();
  for (let i = lo; i < events.length && events[i]!.t <= until; i++) {
    const e = events[i]!;
    const key = hopKey(e);
    if (!seen.has(key) && ok(e)) seen.set(key, e);
  }
  return [...seen.values()];
}

/** An append without entries carries a commit: a hop of its own. */
function hopKey(e: TraceEvent): string {
  return e.index === undefined && e.commit !== undefined ? `${e.hop}(commit)` : e.hop;
}

/** The hop a received message was sent by: the same message's stream write (or rpc write) in the other process. */
function senderHop(hop: string): string | undefined {
  if (hop === "srv.recv") return "client.write";
  if (hop === "client.recv") return "srv.write";
  if (hop.startsWith("recv.")) return `stream.write.${hop.slice("recv.".length)}`;
  return undefined;
}

/**
 * Per write, the time from the hop that caused `key` to `key`: for a receipt, the latest send of
 * that message in another process before it; otherwise the previous hop in the same process.
 */
function stepsTo(perWrite: ReadonlyArray<Array<[string, number]>>, key: string): number[] {
  const [role, hop] = key.split(" ") as [string, string];
  const sender = senderHop(hop);
  const out: number[] = [];
  for (const timeline of perWrite) {
    const at = timeline.findIndex(([k]) => k === key);
    if (at < 0) continue;
    const t = timeline[at]![1];
    for (let i = at - 1; i >= 0; i--) {
      const [k, tk] = timeline[i]!;
      const [r, h] = k.split(" ") as [string, string];
      if (sender ? r !== role && h === sender : r === role) {
        out.push(t - tk);
        break;
      }
    }
  }
  return out.sort((x, y) => x - y);
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** The slowest 1% of writes (by the client's answer): the steps that grew most against all writes. */
function printTail(perWrite: ReadonlyArray<Array<[string, number]>>, keys: string[]): void {
  const answered = (w: Array<[string, number]>) => w.find(([k]) => k === "client client.recv")?.[1] ?? 0;
  const totals = perWrite.map(answered).sort((a, b) => a - b);
  if (totals.length < 100) return;
  const cut = quantile(totals, 0.99);
  const slow = perWrite.filter((w) => answered(w) >= cut);
  const grown = keys
    .slice(1)
    .map((k) => {
      const all = stepsTo(perWrite, k);
      const tail = stepsTo(slow, k);
      if (all.length === 0 || tail.length === 0) return undefined;
      const mean = (l: number[]) => l.reduce((a, b) => a + b, 0) / l.length;
      return {
        k,
        all: quantile(all, 0.5),
        tail: quantile(tail, 0.5),
        tailMean: mean(tail),
        extra: mean(tail) - mean(all),
      };
    })
    .filter((r) => r !== undefined)
    .sort((a, b) => b.extra - a.extra)
    .slice(0, 12);
  process.stdout.write(
    `\nthe slowest 1% (${slow.length} writes, answered after ${cut.toFixed(3)} ms or later): steps that grew most (mean in the tail minus mean over all)\n\n`,
  );
  process.stdout.write(
    "| hop | step p50 all | step p50 tail | step mean tail | grew by ms |\n|---|---:|---:|---:|---:|\n",
  );
  for (const r of grown)
    process.stdout.write(
      `| ${r.k} | ${r.all.toFixed(3)} | ${r.tail.toFixed(3)} | ${r.tailMean.toFixed(3)} | ${r.extra.toFixed(3)} |\n`,
    );
}

function main(): void {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write("usage: hop-trace DIR [SKIP_FIRST_S]\n");
    process.exit(2);
  }
  const skipS = Number(process.argv[3] ?? 3);
  const procs: Proc[] = readdirSync(dir)
    .filter((f) => f.endsWith(".trace"))
    .map((f) => ({ name: f.replace(/\.trace$/, ""), events: parse(join(dir, f)) }));
  const client = procs.find((p) => p.events.some((e) => e.hop === "client.send"));
  const leader = procs.find((p) => p.events.some((e) => e.hop === "propose"));
  if (!client || !leader) throw new Error(`${dir}: no client or no leader trace`);
  const followers = procs.filter(
    (p) => p !== client && p !== leader && p.events.some((e) => e.hop.startsWith("step.")),
  );
  const roles: Array<[string, Proc]> = [
    ["client", client],
    ["leader", leader],
    ...followers.map((f, i): [string, Proc] => [`follower${i + 1}`, f]),
  ];
  const sends = client.events.filter((e) => e.hop === "client.send");
  const start = (sends[0]?.t ?? 0) + skipS * 1000;
  const offsets = new Map<string, number[]>();
  let sample: Array<[string, number]> | undefined;
  let writes = 0;
  const perWrite: Array<Array<[string, number]>> = [];
  for (let i = 0; i < sends.length - 1; i++) {
    const send = sends[i]!.t;
    if (send < start) continue;
    const answer = first(client.events, send, sends[i + 1]!.t, (e) => e.hop === "client.recv")[0];
    if (!answer) continue;
    const propose = first(leader.events, send, answer.t, (e) => e.hop === "propose")[0];
    if (!propose?.index) continue;
    const n = propose.index;
    writes++;
    const timeline: Array<[string, number]> = [];
    for (const [role, p] of roles) {
      const until = role === "client" ? answer.t : send + WINDOW_MS;
      const hits = first(p.events, send, until, (e) => {
        if (e.index === undefined && e.commit === undefined) return UNINDEXED.has(e.hop) && e.t <= answer.t;
        if (e.index === undefined) return e.commit! >= n;
        return e.index === n;
      });
      for (const e of hits) timeline.push([`${role} ${hopKey(e)}`, e.t - send]);
    }
    timeline.sort((a, b) => a[1] - b[1]);
    for (const [k, dt] of timeline) {
      let list = offsets.get(k);
      if (!list) offsets.set(k, (list = []));
      list.push(dt);
    }
    perWrite.push(timeline);
    if (writes === 50) sample = timeline;
  }
  const rows = [...offsets.entries()]
    .filter(([, l]) => l.length >= writes / 2)
    .map(([k, l]) => {
      const sorted = l.map((x) => x).sort((a, b) => a - b);
      return { k, all: l, p50: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), n: l.length };
    })
    .sort((a, b) => a.p50 - b.p50);
  process.stdout.write(`${writes} writes traced (after the first ${skipS} s); ms since client.send\n`);
  process.stdout.write(
    "(step: median over writes of the time since what caused the hop: for a receipt, its send in the other process; else the process's previous hop)\n\n",
  );
  process.stdout.write("| hop | p50 ms | p90 ms | step p50 | seen in |\n|---|---:|---:|---:|---:|\n");
  rows.forEach((r, i) => {
    const steps = i > 0 ? stepsTo(perWrite, r.k) : [];
    const step = steps.length > 0 ? quantile(steps, 0.5).toFixed(3) : "";
    process.stdout.write(`| ${r.k} | ${r.p50.toFixed(3)} | ${r.p90.toFixed(3)} | ${step} | ${r.n} |\n`);
  });
  // Only the hops before the answer (a follower's apply comes after it).
  const answeredAt = rows.find((r) => r.k === "client client.recv")?.p50 ?? Infinity;
  printTail(
    perWrite,
    rows.filter((r) => r.p50 <= answeredAt).map((r) => r.k),
  );
  if (sample) {
    process.stdout.write("\nwrite #50:\n");
    for (const [k, dt] of sample) process.stdout.write(`  ${dt.toFixed(3).padStart(8)}  ${k}\n`);
  }
}

main();
