import type { Logger } from "../../util/logger.js";
import type { Runtime, TimerHandle } from "../../util/runtime.js";
import { realRuntime } from "../../util/runtime.js";
import { silentLogger } from "../../util/logger.js";
import { BalanceLeaderScheduler } from "../schedulers/balance-leader.js";
import { BalanceRegionScheduler } from "../schedulers/balance-region.js";
import type { ClusterModel } from "../core/cluster.js";
import type { IdAllocator } from "../core/id-allocator.js";
import { addOperatorInfluence } from "./op-influence.js";
import type { Operator } from "./operator.js";
import { OpKind } from "./operator.js";
import type { OperatorController } from "./operator-controller.js";
import { ReplicaChecker } from "../schedulers/replica-checker.js";

export interface CoordinatorOptions {
  /** Timers of the scheduling loop (default: the real ones). */
  runtime?: Runtime;
  /** How often the loop runs (patrol + due schedulers), ms. TinyKV patrols every 100 ms. */
  tickMs?: number;
  /** Regions the replica checker looks at per tick (TinyKV: 128). */
  patrolBatch?: number;
  /** Longest wait for heartbeats of known regions before scheduling anyway (TinyKV: 5 min). */
  prepareTimeoutMs?: number;
  /** Scheduler interval bounds: starts at min, x1.3 while idle, up to max (TinyKV: 10 ms .. 5 s). */
  minIntervalMs?: number;
  maxIntervalMs?: number;
  /** Max running replica-checker operators (TinyKV replica-schedule-limit, 64). */
  replicaScheduleLimit?: number;
  balanceLeader?: BalanceLeaderScheduler;
  balanceRegion?: BalanceRegionScheduler;
  log?: Logger;
}

interface ScheduleSlot {
  name: string;
  run: () => Operator | undefined;
  intervalMs: number;
  nextAtMs: number;
}

/**
 * Runs the replica checker over regions and the balance schedulers on their intervals, adding the
 * operators they produce. `tick()` is one deterministic round; `start()` drives it with a timer.
 */
export class Coordinator {
  private readonly seen = new Set<bigint>();
  private readonly startedAtMs: number;
  private readonly slots: ScheduleSlot[];
  private readonly replicaChecker = new ReplicaChecker();
  private patrolKey: Buffer = Buffer.alloc(0);
  private timer: TimerHandle | undefined;
  private running = false;
  private readonly log: Logger;
  private readonly runtime: Runtime;

  constructor(
    private readonly cluster: ClusterModel,
    private readonly oc: OperatorController,
    private readonly ids: IdAllocator,
    private readonly opts: CoordinatorOptions = {},
  ) {
    this.log = opts.log ?? silentLogger;
    this.runtime = opts.runtime ?? realRuntime;
    this.startedAtMs = cluster.clock();
    const leader = opts.balanceLeader ?? new BalanceLeaderScheduler();
    const region = opts.balanceRegion ?? new BalanceRegionScheduler();
    const alloc = () => this.ids.allocSync();
    const min = opts.minIntervalMs ?? 10;
    this.slots = [
      { name: leader.name, run: () => leader.schedule(cluster, oc), intervalMs: min, nextAtMs: 0 },
      { name: region.name, run: () => region.schedule(cluster, oc, alloc), intervalMs: min, nextAtMs: 0 },
    ];
  }

  /** Records that a region heartbeated since start (for the prepare check). */
  markSeen(regionId: bigint): void {
    this.seen.add(regionId);
  }

  /** True once heartbeats arrived for >= 80% of known regions, or the prepare timeout passed. */
  isPrepared(): boolean {
    const total = this.cluster.regions.size;
    if (total === 0) return true;
    if (this.cluster.clock() - this.startedAtMs >= (this.opts.prepareTimeoutMs ?? 5 * 60_000)) return true;
    let seen = 0;
    for (const id of this.seen) if (this.cluster.getRegion(id)) seen++;
    return seen >= total * 0.8;
  }

  /** One round: time out stale operators, patrol regions with the replica checker, run due schedulers. */
  async tick(): Promise<Operator[]> {
    await this.ids.reserve(256n);
    this.oc.sweepTimeouts();
    if (!this.isPrepared()) return [];
    const added: Operator[] = [];
    const add = (op: Operator | undefined): boolean => {
      if (!op) return false;
      if (!this.oc.add(op, this.cluster.getRegion(op.regionId))) return false;
      added.push(op);
      return true;
    };
    // Patrol: the replica checker over the next batch of regions, wrapping around the key space.
    const batch = this.cluster.scanRegions(this.patrolKey, Buffer.alloc(0), this.opts.patrolBatch ?? 128);
    const replicaLimit = this.opts.replicaScheduleLimit ?? 64;
    const infl = this.oc.influence(this.cluster);
    for (const region of batch) {
      if (this.ids.available() < 8n || this.oc.count(OpKind.Replica) >= replicaLimit) break;
      if (this.oc.get(region.meta.id)) continue;
      const op = this.replicaChecker.check(this.cluster, region, () => this.ids.allocSync(), infl);
      if (op && add(op)) addOperatorInfluence(infl, op, region);
    }
    const last = batch[batch.length - 1];
    this.patrolKey = !last || last.meta.endKey.length === 0 ? Buffer.alloc(0) : Buffer.from(last.meta.endKey);

    const now = this.cluster.clock();
    const min = this.opts.minIntervalMs ?? 10;
    const max = this.opts.maxIntervalMs ?? 5000;
    for (const slot of this.slots) {
      if (now < slot.nextAtMs || this.ids.available() < 8n) continue;
      const ok = add(slot.run());
      slot.intervalMs = ok ? min : Math.min(max, Math.ceil(slot.intervalMs * 1.3));
      slot.nextAtMs = now + slot.intervalMs;
    }
    return added;
  }

  start(): void {
    if (this.timer || this.running) return;
    this.running = true;
    const loop = (): void => {
      this.tick()
        .catch((err) => this.log.warn({ err }, "scheduling round failed"))
        .finally(() => {
          if (this.running) this.timer = this.runtime.setTimeout(loop, this.opts.tickMs ?? 100);
        });
    };
    this.timer = this.runtime.setTimeout(loop, this.opts.tickMs ?? 100);
  }

  stop(): void {
    this.running = false;
    this.runtime.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
