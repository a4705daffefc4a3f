// Safe ts for stale reads (issue 18). Every interval, each region's leader computes a resolved
// ts = min(a TSO timestamp taken first, the smallest start_ts of the locks in the region, read
// by a linearizable read taken after it) and proposes it as an UpdateResolvedTs entry. A replica
// that applied the entry knows that its data holds every commit at or below that ts: its safe
// ts. Why that holds: docs/DESIGN-NOTES.md, "Follower and stale reads".
import { AdminCmdType } from "../../proto/raft_cmdpb.js";
import type { RaftCmdRequest } from "../../proto/raft_cmdpb.js";
import type { Logger } from "../../util/logger.js";
import type { Runtime, TimerHandle } from "../../util/runtime.js";
import { CF_LOCK } from "../engine/index.js";
import { regionCursor } from "./keyspace.js";
import type { Peer } from "./peer.js";
import type { Store } from "./store.js";

/** A replica's safe ts: it only moves forward (data only moves forward too), and starts at 0 (nothing is known). */
export class SafeTs {
  private ts = 0n;

  get value(): bigint {
    return this.ts;
  }

  advance(ts: bigint): void {
    if (ts > this.ts) this.ts = ts;
  }
}

/** What the worker needs from the layers around the raftstore. */
export interface ResolvedTsSource {
  /** A fresh timestamp from the scheduler's TSO. */
  tso(): Promise<bigint>;
  /** The start ts of a lock, from its record in CF lock (the format belongs to the transaction layer). */
  lockStartTs(record: Buffer): bigint;
}

/** The resolved ts of a region whose leader scanned `lockStartTs` after taking `tsoTs`. */
export function resolvedTsOf(tsoTs: bigint, lockStartTs: Iterable<bigint>): bigint {
  let resolved = tsoTs;
  for (const ts of lockStartTs) if (ts < resolved) resolved = ts;
  return resolved;
}

/** Proposes each led region's resolved ts every `intervalMs`, one round at a time. */
export class ResolvedTsWorker {
  private timer: TimerHandle | undefined;
  private round: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly source: ResolvedTsSource,
    private readonly intervalMs: number,
    private readonly log: Logger,
    private readonly runtime: Runtime,
  ) {}

  start(): void {
    if (this.intervalMs <= 0 || this.timer) return;
    this.timer = this.runtime.setInterval(() => {
      // A round slower than the interval is not piled on: the next tick after it starts the next one.
      if (!this.round) this.round = this.runRound().finally(() => (this.round = undefined));
    }, this.intervalMs);
  }

  stop(): void {
    this.runtime.clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One round over the regions this store leads; exported for tests that do not wait for the timer. */
  async runRound(): Promise<void> {
    const leaders = [...this.store.peers.values()].filter(
      (p) => p.isLeader() && !p.retiring && !p.destroyed && p.storage.isInitialized(),
    );
    if (leaders.length === 0 || this.store.stopped) return;
    let tsoTs: bigint;
    try {
      tsoTs = await this.source.tso();
    } catch (err) {
      // The scheduler is away: safe ts stays where it is (stale reads fall back to the leader).
      this.log.debug({ err }, "resolved ts: no timestamp from the scheduler this round");
      return;
    }
    await Promise.all(leaders.map((peer) => this.advanceRegion(peer, tsoTs)));
  }

  private async advanceRegion(peer: Peer, tsoTs: bigint): Promise<void> {
    const regionId = peer.regionId;
    try {
      // A linearizable read started after the TSO answered: it holds every write acknowledged
      // before the timestamp was taken, whoever led the region then.
      const header = { regionId, peer: peer.meta, regionEpoch: peer.region.regionEpoch, term: 0n };
      const outcome = await this.store.read(header);
      if ("error" in outcome) return; // not leader any more, or busy: the next round tries again
      let resolved: bigint;
      try {
        resolved = resolvedTsOf(tsoTs, await this.lockStartTs(outcome.snapshot, outcome.region));
      } finally {
        await outcome.snapshot.close();
      }
      // The region as read: if a split or conf change applies first, the entry is refused at apply.
      const cmd: RaftCmdRequest = {
        header: { regionId, peer: peer.meta, regionEpoch: outcome.region.regionEpoch, term: 0n },
        requests: [],
        adminRequest: {
          cmdType: AdminCmdType.UpdateResolvedTs,
          changePeer: undefined,
          compactLog: undefined,
          transferLeader: undefined,
          split: undefined,
          updateResolvedTs: { resolvedTs: resolved },
        },
      };
      await this.store.propose(cmd);
    } catch (err) {
      this.log.warn({ err, region_id: String(regionId) }, "resolved ts: the round failed for this region");
    }
  }

  private async lockStartTs(
    snapshot: Parameters<typeof regionCursor>[0],
    region: Parameters<typeof regionCursor>[2],
  ): Promise<bigint[]> {
    const cursor = regionCursor(snapshot, CF_LOCK, region);
    const out: bigint[] = [];
    try {
      await cursor.seek(region.startKey);
      while (cursor.valid) {
        out.push(this.source.lockStartTs(cursor.value));
        await cursor.next();
      }
    } finally {
      await cursor.close();
    }
    return out;
  }
}
