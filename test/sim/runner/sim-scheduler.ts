/**
 * The real scheduler in the simulation: SchedulerCore and its rpc handlers (InProcessScheduler)
 * with the metadata on a simulated disk, one SchedulerWorker per store life, and the
 * scheduler-crash fault (the process dies, unsynced metadata may go, it restarts from disk).
 */
import { SimDisk } from "../../../src/kv/engine/index.js";
import type { Store, StoreHooks } from "../../../src/kv/raftstore/index.js";
import { SchedulerWorker } from "../../../src/kv/raftstore/index.js";
import { Store as StoreMeta } from "../../../src/proto/metapb.js";
import type { CoreOptions } from "../../../src/scheduler/core/core.js";
import type { InProcessSchedulerClient } from "../../../src/scheduler/server/in-process.js";
import { InProcessScheduler } from "../../../src/scheduler/server/in-process.js";
import type { Logger } from "../../../src/util/logger.js";
import type { Rng } from "../../../src/util/random.js";
import type { Runtime } from "../../../src/util/runtime.js";
import { sleep } from "../../../src/util/runtime.js";
import { EngineMetaKV } from "./engine-meta-kv.js";
import { simStoreAddr } from "./sim-kv.js";

/** Disk figures the simulated stores report in their heartbeats (no real statfs: it is real I/O). */
const SIM_DISK_CAPACITY = 64n << 30n;

export interface SchedulerCrash {
  at: number;
  durationMs: number;
}

/** Scheduler crashes from `startMs` to `endMs`, a few seconds apart, from their own rng stream. */
export function drawSchedulerCrashes(rng: Rng, startMs: number, endMs: number): SchedulerCrash[] {
  const out: SchedulerCrash[] = [];
  let t = startMs + Math.floor(rng() * 6_000);
  while (t < endMs) {
    const durationMs = Math.min(300 + Math.floor(rng() * 2_700), endMs - t);
    out.push({ at: t, durationMs });
    t += durationMs + 3_000 + Math.floor(rng() * 8_000);
  }
  return out;
}

export class SimScheduler {
  readonly disk: SimDisk;
  readonly host: InProcessScheduler;
  private readonly workers = new Map<bigint, { worker: SchedulerWorker; client: InProcessSchedulerClient }>();
  crashes = 0;

  constructor(
    private readonly runtime: Runtime,
    private readonly log: Logger,
    core: Omit<CoreOptions, "runtime" | "log">,
    private readonly storeHeartbeatMs: number,
  ) {
    this.disk = new SimDisk({ name: "scheduler", delay: (ms) => sleep(runtime, ms) });
    this.host = new InProcessScheduler({
      runtime,
      log,
      core,
      openKv: async () => new EngineMetaKV(await this.disk.open("meta")),
    });
  }

  /**
   * Starts the scheduler and bootstraps it for stores 1..n, whose first region (id 1, peer id =
   * store id) the test cluster writes itself; ids the cluster already uses are skipped.
   */
  async bootstrap(storeIds: bigint[]): Promise<void> {
    await this.host.start();
    const core = this.host.core!;
    await core.bootstrap(StoreMeta.create({ id: storeIds[0]!, address: simStoreAddr(storeIds[0]!) }));
    for (const id of storeIds) await core.putStore(StoreMeta.create({ id, address: simStoreAddr(id) }));
    const used = storeIds.reduce((m, id) => (id > m ? id : m), 1n);
    while ((await core.allocId()) <= used);
  }

  /** The hooks of a store about to start: a fresh worker, started by `onStoreStarted`. */
  hooksFor(storeId: bigint): StoreHooks {
    const client = this.host.connect(`store${storeId}`);
    const worker = new SchedulerWorker(
      client,
      async () => ({ capacity: SIM_DISK_CAPACITY, available: SIM_DISK_CAPACITY / 2n }),
      this.log,
      this.runtime,
    );
    this.retire(storeId);
    this.workers.set(storeId, { worker, client });
    return worker.hooks();
  }

  onStoreStarted(storeId: bigint, store: Store): void {
    this.workers.get(storeId)?.worker.start(store, this.storeHeartbeatMs);
  }

  private retire(storeId: bigint): void {
    const w = this.workers.get(storeId);
    w?.worker.stop();
    w?.client.close();
    this.workers.delete(storeId);
  }

  client(name: string, retryDeadlineMs: number): InProcessSchedulerClient {
    return this.host.connect(name, { retryDeadlineMs });
  }

  async crash(): Promise<void> {
    if (!this.host.running) return;
    this.crashes++;
    await this.host.crash(() => this.disk.crash());
  }

  async restart(): Promise<void> {
    await this.host.start();
  }

  async stop(): Promise<void> {
    for (const id of [...this.workers.keys()]) this.retire(id);
    await this.host.stop();
  }
}
