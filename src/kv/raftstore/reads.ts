import type { ReadState } from "../../raft/index.js";
import type { Error as RegionErrorPb } from "../../proto/errorpb.js";
import type { Region } from "../../proto/metapb.js";
import type { RaftCmdRequest } from "../../proto/raft_cmdpb.js";
import type { EngineSnapshot } from "../engine/index.js";
import { checkRegionEpoch } from "./epoch.js";
import type { ReadTimeline } from "./observer.js";

/** What a linearizable read gets: the region and a kv snapshot taken after `applied >= readIndex`. */
export type ReadOutcome = { error: RegionErrorPb } | { region: Region; snapshot: EngineSnapshot };

export interface ReadWaiter {
  deadline: number;
  /** The request, re-checked against the region when the read is served (a split may have happened meanwhile). */
  req: RaftCmdRequest;
  /** A replica read: a follower may serve it after a ReadIndex round-trip to the leader (replica-reads.ts). */
  replica?: boolean;
  done(outcome: ReadOutcome): void;
}

/** A read in the queue, with its stages told to the observer. */
export interface QueuedRead extends ReadWaiter {
  readonly timeline: ReadTimeline;
}

/** When a ReadIndex round was sent, and by the leader of which term: its confirmation renews the lease from then. */
export interface ReadStamp {
  term: bigint;
  /** Monotonic ms, read before the round was handed to raft. */
  sentAt: number;
}

interface InFlightRead {
  /** Empty for a round sent only to renew the lease. */
  waiters: QueuedRead[];
  stamp: ReadStamp | undefined;
}

/**
 * One peer's linearizable reads, in three stages: arrived since the last turn (one ReadIndex
 * serves them all, or the lease does), ReadIndex sent to raft (by context), read index known
 * and waiting for apply.
 */
export class ReadQueue {
  private arrived: QueuedRead[] = [];
  private readonly inFlight = new Map<string, InFlightRead>();
  private readonly waitingApply: Array<{ index: bigint; waiters: QueuedRead[] }> = [];
  private seq = 0;
  private renewals = 0;

  constructor(
    private readonly peerId: bigint,
    private readonly startTimeline: () => ReadTimeline,
    /**
     * Random per queue (per peer incarnation), in every context: the leader's raft merges a
     * ReadIndex whose context is still pending into the older request, so a peer restarted (or
     * re-created) with `seq` from 1 again must not send a context its previous incarnation sent.
     */
    private readonly incarnation = 0n,
  ) {}

  add(waiter: ReadWaiter): void {
    const timeline = this.startTimeline();
    const { deadline, req, replica, done } = waiter;
    // Every answer goes through done, whichever path gives it (served, refused, expired, failed).
    this.arrived.push({
      deadline,
      req,
      replica,
      timeline,
      done: (outcome) => {
        timeline.answered("error" in outcome ? "refused" : "served");
        done(outcome);
      },
    });
  }

  /** The reads that arrived since the last turn, removed from the queue (empty when none). */
  takeArrived(): QueuedRead[] {
    return this.arrived.splice(0);
  }

  /** Records a batch sent to raft as one ReadIndex; returns the context that raft echoes back. */
  sent(batch: QueuedRead[], stamp?: ReadStamp): Buffer {
    for (const w of batch) w.timeline.sent();
    const ctx = Buffer.allocUnsafe(24);
    ctx.writeBigUInt64BE(this.peerId, 0);
    ctx.writeBigUInt64BE(this.incarnation, 8);
    ctx.writeBigUInt64BE(BigInt(++this.seq), 16);
    this.inFlight.set(ctx.toString("hex"), { waiters: batch, stamp });
    if (batch.length === 0) this.renewals++;
    return ctx;
  }

  /** True while a round sent only to renew the lease has not come back. */
  renewalInFlight(): boolean {
    return this.renewals > 0;
  }

  /** The leader's lease vouches for `index` (its commit index now): the batch waits only for apply. */
  servedLocally(batch: QueuedRead[], index: bigint): void {
    for (const w of batch) {
      w.timeline.sent();
      w.timeline.confirmed();
    }
    this.waitingApply.push({ index, waiters: batch });
  }

  /** Raft confirmed read indexes: their batches now wait for apply to reach them. Returns the confirmed rounds' stamps. */
  confirmed(states: ReadonlyArray<ReadState>): ReadStamp[] {
    const stamps: ReadStamp[] = [];
    for (const rs of states) {
      const key = rs.requestCtx.toString("hex");
      const read = this.inFlight.get(key);
      if (!read) continue;
      this.inFlight.delete(key);
      if (read.stamp) stamps.push(read.stamp);
      if (read.waiters.length === 0) {
        this.renewals--;
        continue;
      }
      for (const w of read.waiters) w.timeline.confirmed();
      this.waitingApply.push({ index: rs.index, waiters: read.waiters });
    }
    return stamps;
  }

  /** Serves the batches whose read index is applied, each batch from one kv snapshot. */
  serve(applied: bigint, region: Region, takeSnapshot: () => EngineSnapshot): void {
    while (this.waitingApply.length > 0 && this.waitingApply[0]!.index <= applied) {
      const { waiters } = this.waitingApply.shift()!;
      let snapshot: EngineSnapshot | undefined;
      for (const w of waiters) {
        const epochErr = checkRegionEpoch(w.req, region);
        if (epochErr) {
          w.done({ error: epochErr });
        } else {
          // One snapshot for the whole batch: every reader holds a share and closes it.
          snapshot = snapshot ? snapshot.share() : takeSnapshot();
          w.done({ region, snapshot });
        }
      }
    }
  }

  /**
   * Fails reads past their deadline (a read changes nothing, so the client may simply retry).
   * Reads not yet sent to raft are not expired here: the next turn sends or refuses them.
   */
  expire(now: number, timeout: () => RegionErrorPb): void {
    while (this.waitingApply.length > 0 && this.waitingApply[0]!.waiters.every((w) => w.deadline < now)) {
      for (const w of this.waitingApply.shift()!.waiters) w.done({ error: timeout() });
    }
    for (const [ctx, { waiters }] of this.inFlight) {
      // A renewal round has nobody waiting: a later round's confirmation or a step-down clears it.
      if (waiters.length > 0 && waiters.every((w) => w.deadline < now)) {
        this.inFlight.delete(ctx);
        for (const w of waiters) w.done({ error: timeout() });
      }
    }
  }

  failAll(error: RegionErrorPb): void {
    for (const w of this.arrived.splice(0)) w.done({ error });
    for (const { waiters } of this.inFlight.values()) for (const w of waiters) w.done({ error });
    this.inFlight.clear();
    this.renewals = 0;
    for (const { waiters } of this.waitingApply.splice(0)) for (const w of waiters) w.done({ error });
  }
}
