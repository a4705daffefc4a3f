import type { ChangeDataEvent, ChangeDataRequest, Error as CdcError, Event, Event_Row } from "../../proto/cdcpb.js";
import { Event_LogType } from "../../proto/cdcpb.js";
import type { Peer as PeerMeta, Region } from "../../proto/metapb.js";
import type { RaftRequestHeader } from "../../proto/raft_cmdpb.js";
import type { Engine, EngineSnapshot } from "../engine/index.js";
import type { ReadOutcome } from "../raftstore/reads.js";
import type { Logger } from "../../util/logger.js";
import type { Runtime, TimerHandle } from "../../util/runtime.js";
import { errorMessage } from "../../util/retry.js";
import type { AppliedChange, ChangeHub } from "./hub.js";
import type { FeedMemoryQuota } from "./quota.js";
import type { KeySpan } from "./rows.js";
import {
  appliedStateIn,
  clipToRegion,
  feedError,
  feedErrorOf,
  MAX_EVENT_ROW_BYTES,
  minLockTs,
  rowBytes,
  rowOf,
  scanCommitted,
  spanIsEmpty,
  valueReader,
} from "./rows.js";

/** Where a feed's events go: a gRPC server stream. */
export interface FeedSink {
  /** False when the transport's buffer is full: wait for drain() before writing more. */
  write(ev: ChangeDataEvent): boolean;
  /** Resolves when the transport takes writes again, or the stream closed. */
  drain(): Promise<void>;
  end(): void;
}

/** What a feed needs of the store. */
export interface FeedStore {
  readonly kv: Engine;
  /** The data of the region's raft entry at `index`, if its log still holds it (a raw record's values lie there). */
  entryData(regionId: bigint, index: bigint): Promise<Buffer | undefined>;
  /** This store's replica of the region, if any: its region, whether it leads, who leads. */
  replica(regionId: bigint): { region: Region; isLeader: boolean; self: PeerMeta; leader?: PeerMeta } | undefined;
  /** A linearizable read (ReadIndex): a kv snapshot with every write acknowledged before it. */
  read(header: RaftRequestHeader): Promise<ReadOutcome>;
}

export interface FeedOptions {
  /** How often a resolved ts is computed and sent, ms. */
  resolvedTsIntervalMs: number;
  /** Bytes of changes a feed may hold for a watcher that does not read; past it the feed ends ServerIsBusy. */
  maxPendingBytes: number;
  /** Rows per message of the initial scan. */
  scanPageRows: number;
  /** How often a raw feed checks that its peer still leads, ms (it has no resolved ts round to notice). */
  leaderCheckIntervalMs: number;
  /** Bytes of changes all feeds of the store may hold together (FeedMemoryQuota). */
  storeMaxPendingBytes: number;
}

export const DEFAULT_FEED_OPTIONS: FeedOptions = {
  resolvedTsIntervalMs: 200,
  maxPendingBytes: 8 << 20,
  scanPageRows: 256,
  leaderCheckIntervalMs: 200,
  storeMaxPendingBytes: 256 << 20,
};

/** Rough memory of one queued commit record beyond its bytes (objects, arrays). */
const ROW_OVERHEAD_BYTES = 96;
const NO_DATA = Buffer.alloc(0);

type Queued = { kind: "change"; change: AppliedChange; bytes: number } | { kind: "resolved"; ts: bigint };

/**
 * One watcher of one region on its leader: first the commits after checkpoint_ts from a kv
 * snapshot (the incremental scan), then, live, the commits each applied entry made after that
 * snapshot's applied index, and now and then a resolved ts. The live changes are taken before the
 * snapshot and skipped up to its applied index, so none is missed or sent twice; an entry
 * missing from the sequence (the replica caught up by a raft snapshot) ends the feed, and so does
 * a split or a lost leadership: the watcher resumes from its resolved ts elsewhere.
 */
export class RegionFeed {
  private readonly queue: Queued[] = [];
  private queuedBytes = 0;
  private pumping = false;
  private initialized = false;
  private done = false;
  /** The next raft index the feed expects from the hub (after the scan's snapshot). */
  private nextIndex: bigint | undefined;
  /** The highest applied index whose changes the feed holds (queued or sent). */
  private seenIndex = 0n;
  private region: Region | undefined;
  private span: KeySpan;
  private lastResolved: bigint;
  private timer: TimerHandle | undefined;
  private resolving = false;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly req: ChangeDataRequest,
    private readonly deps: {
      store: FeedStore;
      hub: ChangeHub;
      tso(): Promise<bigint>;
      runtime: Runtime;
      log: Logger;
      options: FeedOptions;
      quota?: FeedMemoryQuota;
    },
    private readonly sink: FeedSink,
  ) {
    this.span = { start: req.startKey, end: req.endKey };
    this.lastResolved = req.checkpointTs;
  }

  get regionId(): bigint {
    return this.req.regionId;
  }

  /** Runs the feed until it ends (an error sent) or close(). */
  async start(): Promise<void> {
    const { store, hub } = this.deps;
    const replica = store.replica(this.regionId);
    if (!replica)
      return this.fail(
        feedError(`region ${this.regionId} is not on this store`, { regionNotFound: { regionId: this.regionId } }),
      );
    if (!replica.isLeader)
      return this.fail(
        feedError(`region ${this.regionId}: this store's peer does not lead it`, {
          notLeader: { regionId: this.regionId, leader: replica.leader },
        }),
      );
    if (this.staleEpoch(replica.region)) return;
    this.unsubscribe = hub.subscribe(this.regionId, (changes) => this.onChanges(changes));
    const snap = store.kv.snapshot();
    try {
      const state = await appliedStateIn(snap, this.regionId);
      if (!state)
        return this.fail(
          feedError(`region ${this.regionId} has no state here`, { regionNotFound: { regionId: this.regionId } }),
        );
      if (this.staleEpoch(state.region)) return;
      this.region = state.region;
      this.span = clipToRegion(this.span, state.region);
      // None of the range is this region's (a wrong route, or garbage): resolved ts for it would
      // tell the watcher nothing changed there while its keys change in another region.
      if (spanIsEmpty(this.span))
        return this.fail(
          feedError(`region ${this.regionId}: the watched range is not in the region`, {
            epochNotMatch: { currentRegions: [state.region] },
          }),
        );
      this.nextIndex = state.appliedIndex + 1n;
      // Changes may have arrived while the state was read: they count as seen too.
      if (state.appliedIndex > this.seenIndex) this.seenIndex = state.appliedIndex;
      for await (const page of scanCommitted(snap, this.span, this.req.checkpointTs, this.deps.options.scanPageRows)) {
        if (this.done) return;
        await this.send({ entries: { entries: page } });
      }
    } catch (err) {
      return this.fail(
        feedError(`region ${this.regionId}: initial scan failed: ${errorMessage(err)}`, {
          regionNotFound: { regionId: this.regionId },
        }),
      );
    } finally {
      await snap.close();
    }
    if (this.done) return;
    await this.send({ entries: { entries: [initializedRow()] } });
    // The watcher may have gone while the stream drained: closed, the feed must not start its timer.
    if (this.done) return;
    this.initialized = true;
    this.timer = this.deps.runtime.setInterval(() => void this.resolve(), this.deps.options.resolvedTsIntervalMs);
    void this.pump();
  }

  /** The watcher went away (or, with `endStream`, the server stops): stop without a word. */
  close(endStream = false): void {
    if (this.done) return;
    this.done = true;
    this.stop();
    if (endStream) this.sink.end();
  }

  get closed(): boolean {
    return this.done;
  }

  private stop(): void {
    this.unsubscribe?.();
    this.deps.runtime.clearInterval(this.timer);
    this.queue.length = 0;
    this.deps.quota?.give(this.queuedBytes);
    this.queuedBytes = 0;
  }

  private staleEpoch(region: Region): boolean {
    const want = this.req.regionEpoch?.version;
    if (want !== undefined && want === region.regionEpoch?.version) return false;
    this.fail(
      feedError(
        `region ${this.regionId}: epoch not match: request version ${want}, current ${region.regionEpoch?.version}`,
        {
          epochNotMatch: { currentRegions: [region] },
        },
      ),
    );
    return true;
  }

  private onChanges(changes: AppliedChange[]): void {
    if (this.done) return;
    // Only the commit records are kept: the entry's data and raw record are not this feed's, and
    // would be held uncounted for a watcher that does not read. Every change counts something.
    const items = changes.map((change) => ({
      kind: "change" as const,
      change: { ...change, rawRecord: undefined, entryData: NO_DATA },
      bytes: change.writes.reduce((n, w) => n + w.key.length + w.value.length + ROW_OVERHEAD_BYTES, ROW_OVERHEAD_BYTES),
    }));
    const over = tooMuchQueued(this.regionId, this.queuedBytes, items, this.deps, "resolved ts");
    if (over) return this.fail(over);
    for (const item of items) {
      this.queue.push(item);
      this.queuedBytes += item.bytes;
      if (item.change.index > this.seenIndex) this.seenIndex = item.change.index;
    }
    if (this.initialized) void this.pump();
  }

  /** Sends the queue in order; one pump at a time, so rows and resolved ts never overtake each other. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.done && this.queue.length > 0) {
        const item = this.queue.shift()!;
        if (item.kind === "resolved") {
          if (item.ts > this.lastResolved) {
            this.lastResolved = item.ts;
            await this.send({ resolvedTs: item.ts });
          }
          continue;
        }
        this.queuedBytes -= item.bytes;
        this.deps.quota?.give(item.bytes);
        await this.deliver(item.change);
      }
    } catch (err) {
      this.fail(
        feedError(`region ${this.regionId}: ${errorMessage(err)}`, { regionNotFound: { regionId: this.regionId } }),
      );
    } finally {
      this.pumping = false;
    }
  }

  private async deliver(change: AppliedChange): Promise<void> {
    const expected = this.nextIndex!;
    if (change.index < expected) return; // in the initial scan's snapshot already
    if (change.index > expected) {
      return this.fail(
        feedError(
          `region ${this.regionId}: this replica skipped raft entries ${expected}..${change.index - 1n} (it installed a snapshot); resubscribe`,
          { regionNotFound: { regionId: this.regionId } },
        ),
      );
    }
    this.nextIndex = expected + 1n;
    // An entry's rows carry values read here (a commit record holds none): sent in events of
    // MAX_EVENT_ROW_BYTES, so neither an event nor what is held waiting for it grows with the entry.
    let rows: Event_Row[] = [];
    let bytes = 0;
    const readValue = valueReader(this.deps.store.kv);
    for (const w of change.writes) {
      const row = await rowOf(w.key, w.value, this.span, Event_LogType.COMMIT, readValue);
      if (!row || row.commitTs <= this.req.checkpointTs) continue;
      rows.push(row);
      bytes += rowBytes(row);
      if (bytes >= MAX_EVENT_ROW_BYTES) {
        await this.send({ index: change.index, entries: { entries: rows } });
        rows = [];
        bytes = 0;
      }
    }
    if (rows.length > 0) await this.send({ index: change.index, entries: { entries: rows } });
    const region = this.region!;
    if (!sameRange(change.region, region)) {
      this.fail(
        feedError(`region ${this.regionId} changed its range at index ${change.index} (a split); resubscribe`, {
          epochNotMatch: { currentRegions: [change.region] },
        }),
      );
    }
  }

  /**
   * Resolved ts = min(a fresh TSO ts, the oldest lock in range). A txn that commits at or below
   * the TSO ts prewrote before that ts was issued, so after a ReadIndex its lock is in the
   * snapshot unless its commit is too, and the commit's change is queued before this resolved
   * ts (seenIndex reached the snapshot's applied index). Otherwise wait for the next round.
   */
  private async resolve(): Promise<void> {
    if (this.done || this.resolving) return;
    this.resolving = true;
    let snap: EngineSnapshot | undefined;
    try {
      const ts = await this.deps.tso();
      const replica = this.deps.store.replica(this.regionId);
      const outcome = await this.deps.store.read({
        regionId: this.regionId,
        peer: replica?.self,
        regionEpoch: this.region!.regionEpoch,
        term: 0n,
      });
      if ("error" in outcome) return this.fail(feedErrorOf(this.regionId, outcome.error));
      snap = outcome.snapshot;
      const state = await appliedStateIn(snap, this.regionId);
      const lock = await minLockTs(snap, this.span);
      if (this.done || !state || state.appliedIndex > this.seenIndex) return;
      const resolved = lock !== undefined && lock < ts ? lock : ts;
      // A watcher that does not read must not grow the queue one round at a time: a resolved ts
      // still waiting at its tail (nothing queued since) only needs the newer value.
      const last = this.queue[this.queue.length - 1];
      if (last?.kind === "resolved") {
        if (resolved > last.ts) last.ts = resolved;
      } else this.queue.push({ kind: "resolved", ts: resolved });
      void this.pump();
    } catch (err) {
      // A TSO hiccup or a read timeout only delays the resolved ts: the next round tries again.
      this.deps.log.debug({ err, region_id: String(this.regionId) }, "change feed: resolved ts round failed");
    } finally {
      this.resolving = false;
      await snap?.close();
    }
  }

  private async send(ev: Partial<Event>): Promise<void> {
    if (this.done) return;
    const event: Event = { regionId: this.regionId, index: 0n, requestId: this.req.requestId, ...ev };
    if (!this.sink.write({ events: [event] })) await this.sink.drain();
  }

  private fail(error: CdcError): void {
    if (this.done) return;
    this.done = true;
    this.stop();
    this.sink.write({ events: [{ regionId: this.regionId, index: 0n, requestId: this.req.requestId, error }] });
    this.sink.end();
  }
}

function initializedRow(): Event_Row {
  return {
    startTs: 0n,
    commitTs: 0n,
    type: Event_LogType.INITIALIZED,
    opType: 0,
    key: Buffer.alloc(0),
    value: Buffer.alloc(0),
    previousValue: Buffer.alloc(0),
    expireTsUnixSecs: 0n,
    expiresAtMs: 0n,
  };
}

function sameRange(a: Region, b: Region): boolean {
  return a.startKey.equals(b.startKey) && a.endKey.equals(b.endKey);
}

/**
 * Why `items` cannot join a feed's queue (its own cap, or the store's quota, which it takes
 * them from when they can), or undefined. The watcher resumes from its last `position`.
 */
export function tooMuchQueued(
  regionId: bigint,
  queuedBytes: number,
  items: ReadonlyArray<{ bytes: number }>,
  deps: { options: FeedOptions; quota?: FeedMemoryQuota },
  position: string,
): CdcError | undefined {
  const bytes = items.reduce((n, i) => n + i.bytes, 0);
  const limit = deps.options.maxPendingBytes;
  if (queuedBytes + bytes > limit)
    return feedError(
      `region ${regionId}: the watcher is too slow: over ${limit} bytes of changes wait for it; resume from the last ${position}`,
      { serverIsBusy: { reason: "watcher too slow", backoffMs: 0n } },
    );
  if (deps.quota && !deps.quota.take(bytes))
    return feedError(
      `region ${regionId}: this store's change feeds hold ${deps.quota.limitBytes} bytes for their watchers already; resume from the last ${position}`,
      { serverIsBusy: { reason: "change feed memory quota", backoffMs: 0n } },
    );
  return undefined;
}
