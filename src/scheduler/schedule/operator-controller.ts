import type { RegionHeartbeatResponse } from "../../proto/schedulerpb.js";
import { OperatorStatus } from "../../proto/schedulerpb.js";
import type { Logger } from "../../util/logger.js";
import { silentLogger } from "../../util/logger.js";
import type { Clock } from "../core/cluster.js";
import type { ClusterModel } from "../core/cluster.js";
import type { OpInfluence } from "./op-influence.js";
import { operatorInfluence } from "./op-influence.js";
import type { Operator } from "./operator.js";
import { commandFor, OpKind } from "./operator.js";
import type { RegionInfo } from "../core/region-info.js";
import { epochOf } from "../core/region-info.js";
import type { StoreLimitOptions } from "./store-limit.js";
import { StoreLimiter } from "./store-limit.js";

export interface FinishedOperator {
  op: Operator;
  status: OperatorStatus;
  finishedAtMs: number;
}

/** Sends a command to the leader of a region (the service binds this to heartbeat streams). */
export type CommandSink = (cmd: RegionHeartbeatResponse) => void;

const HISTORY_LIMIT = 1024;

/**
 * Running operators, at most one per region; advances them on heartbeats, times them out,
 * and remembers how recent ones ended (for GetOperator and the status API).
 */
export class OperatorController {
  private readonly running = new Map<bigint, Operator>();
  private readonly history = new Map<bigint, FinishedOperator>();
  private sink: CommandSink = () => {};
  private readonly finishListeners = new Set<(op: Operator, status: OperatorStatus) => void>();
  /** Per-store rate limit on peers added and removed; every operator added here pays it. */
  readonly storeLimit: StoreLimiter;

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger = silentLogger,
    storeLimit: StoreLimitOptions = {},
  ) {
    this.storeLimit = new StoreLimiter(clock, storeLimit);
  }

  /** What the running operators will still change on each store (sizes, counts, snapshots). */
  influence(cluster: ClusterModel): OpInfluence {
    return operatorInfluence(cluster, this.running.values());
  }

  setSink(sink: CommandSink): void {
    this.sink = sink;
  }

  /** Calls `listener` as each operator ends (metrics); returns the unsubscribe. */
  onFinish(listener: (op: Operator, status: OperatorStatus) => void): () => void {
    this.finishListeners.add(listener);
    return () => this.finishListeners.delete(listener);
  }

  get(regionId: bigint): Operator | undefined {
    return this.running.get(regionId);
  }

  getStatus(regionId: bigint): { op: Operator; status: OperatorStatus } | undefined {
    const op = this.running.get(regionId);
    if (op) return { op, status: OperatorStatus.RUNNING };
    return this.history.get(regionId);
  }

  all(): Operator[] {
    return [...this.running.values()];
  }

  recent(): FinishedOperator[] {
    return [...this.history.values()];
  }

  /** Number of running operators whose kind has any of `kindMask`'s bits. */
  count(kindMask: number): number {
    let n = 0;
    for (const op of this.running.values()) if (op.kind & kindMask) n++;
    return n;
  }

  /** Adds `op` if its region has none running; sends its first command at once when `region` is given. */
  add(op: Operator, region?: RegionInfo): boolean {
    if (this.running.has(op.regionId)) return false;
    this.running.set(op.regionId, op);
    for (const step of op.steps) {
      if (step.type === "add_peer") this.storeLimit.take(step.toStore, "add-peer");
      else if (step.type === "remove_peer") this.storeLimit.take(step.fromStore, "remove-peer");
    }
    this.log.info({ region_id: op.regionId.toString(), op: op.toJSON() }, "operator added");
    if (region) this.dispatch(region);
    return true;
  }

  /** Ends a region's running operator with `status`. */
  finish(regionId: bigint, status: OperatorStatus): void {
    const op = this.running.get(regionId);
    if (!op) return;
    this.running.delete(regionId);
    op.status = status;
    this.history.delete(regionId);
    this.history.set(regionId, { op, status, finishedAtMs: this.clock() });
    if (this.history.size > HISTORY_LIMIT) this.history.delete(this.history.keys().next().value!);
    this.log.info(
      { region_id: regionId.toString(), status: OperatorStatus[status], desc: op.desc },
      "operator finished",
    );
    for (const listener of this.finishListeners) listener(op, status);
  }

  /**
   * Called on each heartbeat of `region`: finishes, times out or cancels its operator, else sends the
   * command for the current step to the leader. Returns the command sent, if any.
   */
  dispatch(region: RegionInfo): RegionHeartbeatResponse | undefined {
    const op = this.running.get(region.meta.id);
    if (!op) return undefined;
    if (epochOf(region).version !== op.epoch.version) {
      // Split or merged since the plan was made: the plan no longer describes this region.
      this.finish(op.regionId, OperatorStatus.CANCEL);
      return undefined;
    }
    const step = op.check(region);
    if (!step) {
      this.finish(op.regionId, OperatorStatus.SUCCESS);
      return undefined;
    }
    if (op.isTimeout(this.clock())) {
      this.finish(op.regionId, OperatorStatus.TIMEOUT);
      return undefined;
    }
    const cmd = commandFor(step, region);
    if (cmd) this.sink(cmd);
    return cmd;
  }

  /** Times out operators whose regions stopped heartbeating. */
  sweepTimeouts(): void {
    const now = this.clock();
    for (const op of [...this.running.values()])
      if (op.isTimeout(now)) this.finish(op.regionId, OperatorStatus.TIMEOUT);
  }

  /** Operators counted against the region schedule limit. */
  regionOps(): number {
    return this.count(OpKind.Region);
  }

  leaderOps(): number {
    let n = 0;
    for (const op of this.running.values()) if (op.kind & OpKind.Leader && !(op.kind & OpKind.Region)) n++;
    return n;
  }
}
