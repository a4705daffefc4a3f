/**
 * One seeded run of the real raftstore: 3 stores on simulated disks and the in-memory network,
 * all on one SimRuntime; clients put and get small registers while faults drawn from the seed
 * come and go; then everything heals, every key must take a write within a bounded simulated
 * time (liveness), and the checkers look at the history (no acknowledged write lost; per-key
 * linearizability). The same seed gives the same trace hash.
 */
import { mulberry32 } from "../../../src/util/random.js";
import { sleep } from "../../../src/util/runtime.js";
import { TestCluster } from "../../harness/cluster.js";
import { checkLinearizable, checkNoLostWrites, RaftInvariantChecker, type RegisterOperation, type Value } from "../checkers/index.js";
import type { DeliberateBugs } from "../../../src/util/deliberate-bugs.js";
import { FaultInjector, describeFault, drawFaults, type Fault, type FaultKind } from "./faults.js";
import { SimClient } from "./sim-client.js";
import { SimRuntime } from "./sim-runtime.js";

export interface SimOptions {
  seed: number;
  stores?: number;
  clients?: number;
  keys?: number;
  /** Simulated ms of faults (default 20 s). */
  faultPhaseMs?: number;
  /** After the heal, every key must take a write within this (simulated ms, default 15 s). */
  livenessBoundMs?: number;
  /** Lines of trace kept for the failure report. */
  traceTail?: number;
  /** The kinds of fault to draw from (default: all). */
  faultKinds?: readonly FaultKind[];
  /** Safety switches turned off, to prove the checkers catch what follows (checkers-bite.test.ts). */
  deliberateBugs?: DeliberateBugs;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  failures: string[];
  faults: Fault[];
  simulatedMs: number;
  events: number;
  operations: number;
  acknowledgedWrites: number;
  /** Writes whose outcome the client could not learn (timeouts, StaleCommand, a store gone). */
  unknownWrites: number;
  /** Snapshots the network carried: they go through the real file system, outside the determinism. */
  snapshots: number;
  traceHash: string;
  traceTail: string[];
  wallMs: number;
}

/** Past this the run is abandoned as hung (simulated ms after the liveness bound). */
const HANG_MARGIN_MS = 30_000;
const OP_DEADLINE_MS = 4_000;

export async function runSimulation(opts: SimOptions): Promise<SimResult> {
  const wallStart = performance.now();
  const stores = opts.stores ?? 3;
  const faultPhaseMs = opts.faultPhaseMs ?? 20_000;
  const livenessBoundMs = opts.livenessBoundMs ?? 15_000;
  const runtime = new SimRuntime(opts.seed, opts.traceTail ?? 40);
  // Separate streams, so adding a client op does not shift the fault schedule.
  const faultRng = mulberry32(opts.seed ^ 0x5eed_fa17);
  const workloadRng = mulberry32(opts.seed ^ 0x0c11_e475);
  const faults = drawFaults(faultRng, stores, 1_000, faultPhaseMs, opts.faultKinds);
  const failures: string[] = [];
  const history: RegisterOperation[] = [];
  const keys = Array.from({ length: opts.keys ?? 4 }, (_, i) => `k${i}`);

  const cluster = new TestCluster({
    stores,
    disk: "sim",
    runtime,
    // Each store reads its own clock, which clock faults skew and step.
    storeRuntime: (id) => runtime.nodeClock(`store${id}`),
    seed: opts.seed,
    config: { deliberateBugs: opts.deliberateBugs },
  });
  const client = new SimClient(cluster, runtime, history);
  const injector = new FaultInjector(cluster, faultRng, (line) => runtime.note(line), (id) => runtime.nodeClock(`store${id}`));
  let finished = false;
  let clientsStop = false;
  let acknowledgedWrites = 0;
  const raft = new RaftInvariantChecker();

  const scenario = async (): Promise<void> => {
    await cluster.start();
    // Election safety: who believes it leads, sampled twice a raft tick (see watchLeaders).
    runtime.setInterval(() => watchLeaders(cluster, raft, runtime.elapsedMs, failures), LEADER_SAMPLE_MS);
    for (const f of faults) {
      runtime.schedule(`fault ${f.kind}`, f.at - runtime.elapsedMs, () => {
        void injector.begin(f).then((end) => {
          runtime.schedule(`fault end ${f.kind}`, f.durationMs, () => void end().catch((err) => failures.push(`ending ${describeFault(f)}: ${String(err)}`)));
        }, (err) => failures.push(`starting ${describeFault(f)}: ${String(err)}`));
      });
    }
    let seq = 0;
    const clients = Array.from({ length: opts.clients ?? 3 }, async (_, c) => {
      while (!clientsStop) {
        const key = keys[Math.floor(workloadRng() * keys.length)]!;
        if (workloadRng() < 0.6) await client.put(c, key, `c${c}-${++seq}`, OP_DEADLINE_MS);
        else await client.get(c, key, OP_DEADLINE_MS);
        await sleep(runtime, Math.floor(workloadRng() * 50));
      }
    });
    await sleep(runtime, faultPhaseMs - runtime.elapsedMs);
    await injector.healAll();
    const healedAt = runtime.elapsedMs;
    // Liveness: each key takes a fresh acknowledged write within the bound.
    for (const key of keys) {
      for (;;) {
        const left = healedAt + livenessBoundMs - runtime.elapsedMs;
        if (left <= 0) {
          failures.push(`liveness: key ${key} took no write within ${livenessBoundMs} ms of the heal\n${cluster.dump()}`);
          break;
        }
        const op = await client.put(-1, key, `heal-${key}`, left);
        if (op.outcome === "ok") break;
      }
    }
    clientsStop = true;
    await Promise.all(clients);
    const finalRead = new Map<string, Value>();
    for (const key of keys) {
      const op = await client.get(-1, key, livenessBoundMs);
      if (op.outcome === "ok") finalRead.set(key, op.value ?? null);
      else failures.push(`final read of ${key} did not succeed within ${livenessBoundMs} ms`);
    }
    if (finalRead.size === keys.length) {
      const lost = checkNoLostWrites(history, finalRead);
      acknowledgedWrites = lost.acknowledgedWrites;
      if (!lost.ok) failures.push(lost.report);
    }
    const lin = checkLinearizable(history);
    if (lin.verdict === "illegal") failures.push(lin.report);
    const net = cluster.network.stats;
    runtime.note(`network sent=${net.sent} delivered=${net.delivered} dropped=${net.dropped} duplicated=${net.duplicated} snapshots=${net.snapshotsOk}/${net.snapshotsFailed}`);
    await cluster.shutdown();
  };

  runtime.schedule("scenario", 0, () => {
    scenario().then(
      () => (finished = true),
      (err) => {
        failures.push(`scenario threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        finished = true;
      },
    );
  });
  // A run stops at its first failure, so the trace's tail shows what led to it.
  await runtime.runUntil(faultPhaseMs + 2 * livenessBoundMs + HANG_MARGIN_MS, () => finished || failures.length > 0);
  const stoppedAtFailure = !finished && failures.length > 0;
  const traceTail = runtime.traceTail();
  const traceHash = runtime.traceHash();
  if (runtime.livelock) failures.push(`livelock: ${runtime.livelock}\n${cluster.dump()}`);
  else if (stoppedAtFailure) {
    clientsStop = true;
    await shutDownAfterFailure(runtime, cluster);
  } else if (!finished) {
    failures.push(`hung: the scenario did not finish by ${runtime.elapsedMs} simulated ms (${runtime.pendingEvents} events queued)\n${cluster.dump()}`);
    clientsStop = true;
  }
  for (const { line, err } of runtime.eventErrors) failures.push(`event "${line}" threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  return {
    seed: opts.seed,
    ok: failures.length === 0,
    failures,
    faults,
    simulatedMs: runtime.elapsedMs,
    events: runtime.events,
    operations: history.length,
    acknowledgedWrites,
    unknownWrites: history.filter((op) => op.kind !== "get" && op.outcome === "unknown").length,
    snapshots: cluster.network.stats.snapshotsOk + cluster.network.stats.snapshotsFailed,
    traceHash,
    traceTail,
    wallMs: performance.now() - wallStart,
  };
}

const LEADER_SAMPLE_MS = 10;

/** Records every running peer that believes it leads; a second leader of one term is a failure. */
function watchLeaders(cluster: TestCluster, raft: RaftInvariantChecker, at: number, failures: string[]): void {
  for (const id of cluster.storeIds) {
    for (const peer of cluster.store(id)?.peers.values() ?? []) {
      if (!peer.isLeader()) continue;
      const violation = raft.observe({ type: "leader", region: Number(peer.regionId), term: Number(peer.term), store: Number(id), peer: Number(peer.meta.id), at });
      if (violation) failures.push(`raft: ${violation.message}\n${cluster.dump()}`);
    }
  }
}

/** Best effort: the stores stop (and the temp dir goes) within a few simulated seconds, or are left. */
async function shutDownAfterFailure(runtime: SimRuntime, cluster: TestCluster): Promise<void> {
  let down = false;
  runtime.schedule("shutdown after failure", 0, () => void cluster.shutdown().then(() => (down = true), () => (down = true)));
  await runtime.runUntil(runtime.elapsedMs + 5_000, () => down);
}

/** The failure report: seed, fault schedule, failures, the trace's last lines. */
export function describeResult(r: SimResult): string {
  const lines = [
    `seed ${r.seed}: ${r.ok ? "ok" : "FAILED"} (${(r.simulatedMs / 1000).toFixed(1)} simulated s, ${r.events} events, ${r.operations} ops (${r.acknowledgedWrites} acknowledged writes, ${r.unknownWrites} unknown), ${r.snapshots} snapshots, ${r.wallMs.toFixed(0)} ms wall)`,
    `fault schedule:`,
    ...r.faults.map((f) => `  ${describeFault(f)}`),
  ];
  if (!r.ok) lines.push("failures:", ...r.failures.map((f) => `  ${f}`));
  lines.push("trace tail:", ...r.traceTail.map((l) => `  ${l}`), `trace hash: ${r.traceHash}`);
  return lines.join("\n");
}
