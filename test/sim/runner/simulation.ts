/**
 * One seeded run of the whole cluster: N stores on simulated disks and the in-memory network,
 * the real scheduler (in process, its metadata on a simulated disk, balance and replica checkers
 * on, small regions so it approves splits and moves peers) and several real KvClients, all on
 * one SimRuntime. Half the clients put and get registers (raw API), half move money between bank
 * accounts in transactions and read every account in one snapshot. Faults drawn from the seed
 * come and go (stores crash and lose power, the network partitions and misbehaves, disks slow
 * down, the scheduler crashes); then everything heals, every register must take a write and the
 * bank must be read within a bounded simulated time (liveness), and the checkers look at the
 * histories: no acknowledged write lost, per-key linearizability, the bank's total in every
 * snapshot. The same seed gives the same trace hash.
 */
import { KvClient } from "../../../src/client/client.js";
import { schedulerRetryDeadlineMs } from "../../../src/client/client-options.js";
import { BalanceLeaderScheduler } from "../../../src/scheduler/schedulers/balance-leader.js";
import { createLogger, silentLogger } from "../../../src/util/logger.js";
import { mulberry32 } from "../../../src/util/random.js";
import { sleep } from "../../../src/util/runtime.js";
import { TestCluster } from "../../harness/cluster.js";
import { EngineCrashedError, SyncFailedError } from "../../../src/kv/engine/sim-disk.js";
import { FilesCrashedError, SimFileError } from "../../../src/kv/engine/sim-files.js";
import type { BankRead, Value } from "../checkers/index.js";
import { checkBank, checkLinearizable, checkNoLostWrites } from "../checkers/index.js";
import type { DeliberateBugs } from "../../../src/util/deliberate-bugs.js";
import { RaftWatch } from "./raft-watch.js";
import { RawWatchCheck } from "./raw-watch-check.js";
import { historySoFar } from "./report.js";
import type { Reconfiguration } from "./reconfigure.js";
import { drawReconfigurations, reconfigure } from "./reconfigure.js";

export { describeResult } from "./report.js";
import type { Fault, FaultKind } from "./faults.js";
import { FaultInjector, describeFault, drawFaults } from "./faults.js";
import { SIM_RAFTSTORE_CONFIG as SIM_RAFTSTORE } from "./config.js";
import { SimKvNetwork } from "./sim-kv.js";
import type { SettleBy } from "./sim-runtime.js";
import { SimRuntime } from "./sim-runtime.js";
import type { SchedulerCrash } from "./sim-scheduler.js";
import { drawSchedulerCrashes, SimScheduler } from "./sim-scheduler.js";
import type { BankStats } from "./workloads.js";
import { BankWorkload, RegisterWorkload } from "./workloads.js";

export interface SimOptions {
  seed: number;
  /** Stores (default 4); region 1 starts on the first three and the scheduler keeps 3 replicas. */
  stores?: number;
  /** The scheduler is asked for a move-peer, transfer-leader or remove-and-re-add this often on average (simulated ms, default 700; 0: never). */
  reconfigureEveryMs?: number;
  /** KvClients; the even ones run the register workload, the odd ones the bank (default 4). */
  clients?: number;
  keys?: number;
  accounts?: number;
  /** Client 2's register reads go to followers as replica reads (REPLICA_READS=1). */
  replicaReads?: boolean;
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
  /** How the driver settles between events (default "immediate"; `make sim` uses "tick"). */
  settleBy?: SettleBy;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  failures: string[];
  faults: Fault[];
  schedulerCrashes: SchedulerCrash[];
  reconfigurations: Reconfiguration[];
  simulatedMs: number;
  events: number;
  operations: number;
  acknowledgedWrites: number;
  /** Writes whose outcome the client could not learn (StaleCommand, no answer in time). */
  unknownWrites: number;
  bank: BankStats & { reads: number };
  /** Regions at the end, as the scheduler knows them (splits happened when > 1). */
  regions: number;
  /** Operator steps (add/remove peer, transfer leader) the scheduler sent to stores. */
  operatorSteps: number;
  /** Conf-change entries applied (per region and index). */
  confChanges: number;
  /** Entries applied (per region and index) whose replicas the raft checker compared. */
  raftApplies: number;
  /** Applies too far behind the region's newest to compare (RaftInvariantChecker's window). */
  uncheckedApplies: number;
  /** Snapshots the network carried: they go through the real file system, outside the determinism. */
  snapshots: number;
  traceHash: string;
  traceTail: string[];
  wallMs: number;
}

/** Past this the run is abandoned as hung (simulated ms after the liveness bound). */
const HANG_MARGIN_MS = 30_000;
const OP_DEADLINE_MS = 4_000;
/** Small regions, so the scheduler approves splits and balances peers while the faults run. */
export async function runSimulation(opts: SimOptions): Promise<SimResult> {
  const wallStart = performance.now();
  const stores = opts.stores ?? 4;
  const faultPhaseMs = opts.faultPhaseMs ?? 20_000;
  const livenessBoundMs = opts.livenessBoundMs ?? 15_000;
  const runtime = new SimRuntime(opts.seed, opts.traceTail ?? 200, opts.settleBy);
  // Separate streams, so adding a client op does not shift the fault schedule.
  const faultRng = mulberry32(opts.seed ^ 0x5eed_fa17);
  const workloadRng = mulberry32(opts.seed ^ 0x0c11_e475);
  const schedulerRng = mulberry32(opts.seed ^ 0x5c4e_d01e);
  const faults = drawFaults(faultRng, stores, 1_000, faultPhaseMs, opts.faultKinds);
  const schedulerCrashes = drawSchedulerCrashes(schedulerRng, 2_000, faultPhaseMs);
  const reconfigureRng = mulberry32(opts.seed ^ 0x0c0f_c4a6);
  const reconfigurations = drawReconfigurations(reconfigureRng, 1_000, faultPhaseMs, opts.reconfigureEveryMs ?? 700);
  const failures: string[] = [];
  const registers = new RegisterWorkload(runtime, opts.keys ?? 4, opts.replicaReads);
  const bank = new BankWorkload(runtime, opts.accounts ?? 4);
  let finalBank: BankRead | undefined;

  const log = process.env.CLUSTER_LOG ? createLogger(process.env.CLUSTER_LOG) : silentLogger;
  // No leader-count tolerance: with a handful of regions the default (5 each side) would never
  // move a leader; at 0 the scheduler keeps transferring leaders while the faults run.
  const coordinator = { prepareTimeoutMs: 2_000, balanceLeader: new BalanceLeaderScheduler({ tolerance: 0 }) };
  const scheduler = new SimScheduler(
    runtime,
    log,
    { coordinator, maxStoreDownTimeMs: 60_000 },
    SIM_RAFTSTORE.schedulerStoreHeartbeatTickMs,
  );
  const raft = new RaftWatch(
    () => runtime.elapsedMs,
    (message) => failures.push(message),
    () => cluster.dump(),
  );
  const rawWatch = new RawWatchCheck(
    (id) => runtime.nodeClock(`store${id}`),
    (message) => failures.push(`${message}\n${cluster.dump()}`),
  );
  const cluster = new TestCluster({
    stores,
    regionStores: Math.min(stores, 3),
    disk: "sim",
    runtime,
    // Hundreds of thousands of messages a seed: a deep copy each, not an encode and a decode.
    messageCopy: "clone",
    // A store stops itself on a disk that failed or crashed under it (the faults do that); any
    // other reason is a bug the run must report, not a liveness failure a long way after it.
    onStoreFatal: (id, err) => {
      if (!isInjectedDiskFault(err)) failures.push(`store ${id} stopped itself: ${errorStack(err)}\n${cluster.dump()}`);
    },
    // Each store reads its own clock, which clock faults skew and step.
    storeRuntime: (id) => runtime.nodeClock(`store${id}`),
    seed: opts.seed,
    config: { ...SIM_RAFTSTORE, deliberateBugs: opts.deliberateBugs },
    hooks: (id) => raft.hooks(scheduler.hooksFor(id)),
    observer: (id) => rawWatch.observer(id, raft.observer()),
    onStoreStarted: (id, store) => {
      scheduler.onStoreStarted(id, store);
      rawWatch.started(id, store);
    },
  });
  const kvNet = new SimKvNetwork(runtime, (id) => cluster.store(id), log);
  const clientOptions = {
    timeoutMs: OP_DEADLINE_MS,
    rpcTimeoutMs: 1_000,
    backoff: { initialMs: 10, maxMs: 200 },
    runtime,
    connectKv: kvNet.connect,
    log,
  };
  // Each client has its own scheduler connection (and region cache), retried within its operation budget.
  const schedulerRetryMs = schedulerRetryDeadlineMs({
    deadlineMs: OP_DEADLINE_MS,
    initialBackoffMs: 10,
    maxBackoffMs: 200,
  });
  const newClient = (name: string) => KvClient.withScheduler(scheduler.client(name, schedulerRetryMs), clientOptions);
  const injector = new FaultInjector(
    cluster,
    faultRng,
    (line) => runtime.note(line),
    (id) => runtime.nodeClock(`store${id}`),
  );
  let finished = false;
  let clientsStop = false;

  const scenario = async (): Promise<void> => {
    await scheduler.bootstrap(cluster.storeIds);
    await cluster.start();
    // Election safety: a new leader tells at once (its heartbeat hook); a sample catches the rest.
    runtime.setInterval(() => raft.sample(cluster), LEADER_SAMPLE_MS);
    runtime.setInterval(() => rawWatch.tick(), RAW_WATCH_TICK_MS);
    const checker = newClient("checker");
    if (!(await bank.open(checker, livenessBoundMs)))
      failures.push(`the bank's accounts could not be opened within ${livenessBoundMs} ms`);
    for (const f of faults) {
      runtime.schedule(`fault ${f.kind}`, f.at - runtime.elapsedMs, () => {
        void injector.begin(f).then(
          (end) => {
            runtime.schedule(
              `fault end ${f.kind}`,
              f.durationMs,
              () => void end().catch((err) => failures.push(`ending ${describeFault(f)}: ${String(err)}`)),
            );
          },
          (err) => failures.push(`starting ${describeFault(f)}: ${String(err)}`),
        );
      });
    }
    for (const c of schedulerCrashes) {
      runtime.schedule("fault scheduler-crash", Math.max(0, c.at - runtime.elapsedMs), () => {
        runtime.note(`fault on: scheduler crash for ${c.durationMs} ms`);
        void scheduler
          .crash()
          .then(() =>
            runtime.schedule(
              "fault end scheduler-crash",
              c.durationMs,
              () => void scheduler.restart().catch((err) => failures.push(`scheduler restart: ${String(err)}`)),
            ),
          );
      });
    }
    for (const r of reconfigurations) {
      runtime.schedule(`reconfigure ${r.kind}`, Math.max(0, r.at - runtime.elapsedMs), () => {
        const core = scheduler.host.core;
        runtime.note(
          `reconfigure: ${core ? reconfigure(core, r.kind, reconfigureRng) : `${r.kind}: skipped, the scheduler is down`}`,
        );
      });
    }
    const clients = Array.from({ length: opts.clients ?? 4 }, async (_, c) => {
      const client = newClient(`client${c}`);
      while (!clientsStop) {
        if (c % 2 === 0) await registers.step(c, client, workloadRng);
        else await bank.step(c, client, workloadRng);
        await sleep(runtime, Math.floor(workloadRng() * 50));
      }
      client.close();
    });
    await sleep(runtime, faultPhaseMs - runtime.elapsedMs);
    await injector.healAll();
    if (!scheduler.host.running) await scheduler.restart();
    runtime.note("heal: scheduler up");
    const healedAt = runtime.elapsedMs;
    // Liveness: each register takes a fresh acknowledged write, and the bank is read, within the bound.
    for (const key of registers.keys) {
      for (;;) {
        if (healedAt + livenessBoundMs - runtime.elapsedMs <= 0) {
          failures.push(
            `liveness: key ${key} took no write within ${livenessBoundMs} ms of the heal\n${cluster.dump()}`,
          );
          break;
        }
        if ((await registers.put(-1, checker, key, `heal-${key}`)).outcome === "ok") break;
      }
    }
    clientsStop = true;
    await Promise.all(clients);
    const finalRead = new Map<string, Value>();
    for (const key of registers.keys) {
      const op = await registers.get(-1, checker, key);
      if (op.outcome === "ok") finalRead.set(key, op.value ?? null);
      else failures.push(`final read of ${key} did not succeed`);
    }
    while (!finalBank && runtime.elapsedMs < healedAt + 2 * livenessBoundMs) finalBank = await bank.read(-1, checker);
    if (!finalBank) failures.push(`liveness: the bank could not be read within ${2 * livenessBoundMs} ms of the heal`);
    if (finalRead.size === registers.keys.length) {
      const lost = checkNoLostWrites(registers.history, finalRead);
      if (!lost.ok) failures.push(lost.report);
    }
    const lin = checkLinearizable(registers.history);
    if (lin.verdict === "illegal") failures.push(lin.report);
    if (finalBank) {
      const b = checkBank({ accounts: bank.accounts, total: bank.total, reads: bank.reads, final: finalBank });
      if (!b.ok) failures.push(b.report);
    }
    const net = cluster.network.stats;
    runtime.note(
      `network sent=${net.sent} delivered=${net.delivered} dropped=${net.dropped} duplicated=${net.duplicated} snapshots=${net.snapshotsOk}/${net.snapshotsFailed} client calls=${kvNet.calls}`,
    );
    regions = scheduler.host.core?.cluster.regions.size ?? 0;
    rawWatch.stop();
    const w = rawWatch.stats;
    runtime.note(
      `raw watch: ${w.rows} changes told, ${w.subscriptions} subscriptions, ${w.compacted} positions compacted`,
    );
    checker.close();
    await scheduler.stop();
    await cluster.shutdown();
  };

  let regions = 0;
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
  await runtime.runUntil(faultPhaseMs + 3 * livenessBoundMs + HANG_MARGIN_MS, () => finished || failures.length > 0);
  const stoppedAtFailure = !finished && failures.length > 0;
  const traceTail = runtime.traceTail();
  const traceHash = runtime.traceHash();
  if (runtime.livelock) failures.push(`livelock: ${runtime.livelock}\n${cluster.dump()}`);
  else if (stoppedAtFailure) {
    clientsStop = true;
    await shutDownAfterFailure(runtime, cluster);
  } else if (!finished) {
    failures.push(
      `hung: the scenario did not finish by ${runtime.elapsedMs} simulated ms (${runtime.pendingEvents} events queued)\n${cluster.dump()}`,
    );
    clientsStop = true;
  }
  // A run that stopped early never reached its checks: what the clients saw so far may still
  // hold the smallest failing piece of history.
  if (!finished) failures.push(...historySoFar(registers.history, bank));
  for (const { line, err } of runtime.eventErrors)
    failures.push(`event "${line}" threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  const writes = registers.history.filter((op) => op.kind !== "get");
  return {
    seed: opts.seed,
    ok: failures.length === 0,
    failures,
    faults,
    schedulerCrashes,
    reconfigurations,
    simulatedMs: runtime.elapsedMs,
    events: runtime.events,
    operations: registers.history.length + bank.reads.length + bank.stats.committed,
    acknowledgedWrites: writes.filter((op) => op.outcome === "ok").length,
    unknownWrites: writes.filter((op) => op.outcome === "unknown").length,
    bank: { ...bank.stats, reads: bank.reads.length },
    regions,
    operatorSteps: scheduler.host.commandsSent,
    confChanges: raft.confChanges,
    raftApplies: raft.checker.distinctApplies,
    uncheckedApplies: raft.checker.uncheckedApplies,
    snapshots: cluster.network.stats.snapshotsOk + cluster.network.stats.snapshotsFailed,
    traceHash,
    traceTail,
    wallMs: performance.now() - wallStart,
  };
}

/** The leader hook sees every new leader; the sample only backs it up. */
const LEADER_SAMPLE_MS = 50;
/** How often every led region without a raw watcher gets one. */
const RAW_WATCH_TICK_MS = 250;

/** Best effort: the stores stop (and the temp dir goes) within a few simulated seconds, or are left. */
async function shutDownAfterFailure(runtime: SimRuntime, cluster: TestCluster): Promise<void> {
  let down = false;
  runtime.schedule(
    "shutdown after failure",
    0,
    () =>
      void cluster.shutdown().then(
        () => (down = true),
        () => (down = true),
      ),
  );
  await runtime.runUntil(runtime.elapsedMs + 5_000, () => down);
}

function isInjectedDiskFault(err: unknown): boolean {
  return [SyncFailedError, EngineCrashedError, FilesCrashedError, SimFileError].some((k) => err instanceof k);
}

function errorStack(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}
