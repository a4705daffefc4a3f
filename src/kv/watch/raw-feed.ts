import type { ChangeDataRequest, Error as CdcError, Event, Event_Row } from "../../proto/cdcpb.js";
import { Event_LogType, Event_Row_OpType } from "../../proto/cdcpb.js";
import type { Region } from "../../proto/metapb.js";
import { RaftApplyState, RegionLocalState } from "../../proto/raft_serverpb.js";
import { CF_DEFAULT } from "../engine/index.js";
import type { EngineSnapshot } from "../engine/index.js";
import { applyStateKey, rawChangesSinceKey, regionStateKey } from "../raftstore/keys.js";
import type { RawChangeRecord } from "../raftstore/raw-changes.js";
import {
  decodeRawChangeRecord,
  decodeRawChangesSince,
  RawChangeEntryGoneError,
  rawChangeRecordNeedsEntry,
  readRawChanges,
} from "../raftstore/raw-changes.js";
import { keyInRange } from "../../util/bytes.js";
import type { Logger } from "../../util/logger.js";
import { errorMessage } from "../../util/retry.js";
import type { Runtime, TimerHandle } from "../../util/runtime.js";
import type { FeedOptions, FeedSink, FeedStore } from "./feed.js";
import { tooMuchQueued } from "./feed.js";
import type { FeedMemoryQuota } from "./quota.js";
import type { AppliedChange, ChangeHub } from "./hub.js";
import type { KeySpan } from "./rows.js";
import { feedError } from "./rows.js";

/** Rough memory of one queued entry beyond its record's bytes. */
const CHANGE_OVERHEAD_BYTES = 96;
const NO_DATA = Buffer.alloc(0);

/**
 * One watcher of one region's raw keys (cdcpb kv_api = RawKV) on its leader, positioned by raft
 * index: the change records of entries after from_index that the kv snapshot holds, then
 * INITIALIZED, then the records of entries applied after that snapshot, live. The hub's changes
 * are taken before the snapshot and skipped up to its applied index, so none is missed or sent
 * twice; an entry missing from the sequence (the replica caught up by a raft snapshot) ends the
 * feed. A split ends it at the split's index with EpochNotMatch and the regions it made; a lost
 * leadership (checked every leaderCheckIntervalMs) with NotLeader. The watcher resumes each part
 * from the last index it got: the records are the same on every replica.
 */
export class RawRegionFeed {
  private readonly queue: Array<{ change: AppliedChange; bytes: number }> = [];
  private queuedBytes = 0;
  private pumping = false;
  private initialized = false;
  private done = false;
  /** The next raft index the feed expects from the hub. */
  private nextIndex: bigint | undefined;
  /** Where the live part starts: entries at or below it were sent, or are the watcher's own past. */
  private sentIndex = 0n;
  private readonly span: KeySpan;
  private timer: TimerHandle | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly req: ChangeDataRequest,
    private readonly deps: {
      store: FeedStore;
      hub: ChangeHub;
      runtime: Runtime;
      log: Logger;
      options: FeedOptions;
      quota?: FeedMemoryQuota;
    },
    private readonly sink: FeedSink,
  ) {
    this.span = { start: req.startKey, end: req.endKey };
  }

  get regionId(): bigint {
    return this.req.regionId;
  }

  get closed(): boolean {
    return this.done;
  }

  async start(): Promise<void> {
    const { store, hub } = this.deps;
    const id = this.regionId;
    const replica = store.replica(id);
    if (!replica)
      return this.fail(feedError(`region ${id} is not on this store`, { regionNotFound: { regionId: id } }));
    if (!replica.isLeader) return this.fail(this.notLeader());
    this.unsubscribe = hub.subscribe(id, (changes) => this.onChanges(changes), { commitRecords: false });
    const snap = store.kv.snapshot();
    let region: Region;
    try {
      const state = await stateIn(snap, id);
      if (!state) return this.fail(feedError(`region ${id} has no state here`, { regionNotFound: { regionId: id } }));
      region = state.region;
      const from = this.req.fromIndex;
      if (from !== 0n && from < state.oldestIndex) {
        return this.fail(
          feedError(
            `region ${id}: position ${from} is compacted: this replica keeps raw changes after ${state.oldestIndex} only`,
            { positionCompacted: { regionId: id, fromIndex: from, oldestIndex: state.oldestIndex } },
          ),
        );
      }
      // A new leader may not have applied yet all that the watcher got from the old one.
      this.sentIndex = from === 0n || from < state.appliedIndex ? state.appliedIndex : from;
      this.nextIndex = state.appliedIndex + 1n;
      if (from !== 0n) {
        const entryData = (index: bigint) => this.deps.store.entryData(id, index);
        for await (const { index, record } of readRawChanges(snap, id, from, state.appliedIndex, entryData)) {
          if (this.done) return;
          if (record.kind === "split") return this.splitAt(index, record.regions);
          await this.sendRows(index, record, Event_LogType.COMMITTED);
        }
      }
    } catch (err) {
      if (err instanceof RawChangeEntryGoneError)
        return this.fail(
          feedError(`${err.message}: position ${this.req.fromIndex} is compacted`, {
            positionCompacted: { regionId: id, fromIndex: this.req.fromIndex, oldestIndex: err.index },
          }),
        );
      return this.fail(
        feedError(`region ${id}: reading raw changes failed: ${errorMessage(err)}`, {
          regionNotFound: { regionId: id },
        }),
      );
    } finally {
      await snap.close();
    }
    if (this.done) return;
    if (!spanWithin(this.span, region)) {
      // The watcher's range is not all this region's (it routed by a stale view): it must look again.
      return this.fail(
        feedError(`region ${id}: the watched range is not within the region`, {
          epochNotMatch: { currentRegions: [region] },
        }),
        this.sentIndex,
      );
    }
    await this.send({ index: this.sentIndex, entries: { entries: [initializedRow()] } });
    // The watcher may have gone while the stream drained: closed, the feed must not start its timer.
    if (this.done) return;
    this.initialized = true;
    this.timer = this.deps.runtime.setInterval(() => this.checkLeader(), this.deps.options.leaderCheckIntervalMs);
    void this.pump();
  }

  /** The watcher went away (or, with `endStream`, the server stops): stop without a word. */
  close(endStream = false): void {
    if (this.done) return;
    this.done = true;
    this.stop();
    if (endStream) this.sink.end();
  }

  private stop(): void {
    this.unsubscribe?.();
    this.deps.runtime.clearInterval(this.timer);
    this.queue.length = 0;
    this.deps.quota?.give(this.queuedBytes);
    this.queuedBytes = 0;
  }

  private notLeader(): CdcError {
    const leader = this.deps.store.replica(this.regionId)?.leader;
    return feedError(`region ${this.regionId}: this store's peer does not lead it`, {
      notLeader: { regionId: this.regionId, leader },
    });
  }

  /** A partitioned or deposed leader applies nothing more: the watcher must hear so, not silence. */
  private checkLeader(): void {
    if (this.done) return;
    const replica = this.deps.store.replica(this.regionId);
    if (!replica) {
      this.fail(feedError(`region ${this.regionId} left this store`, { regionNotFound: { regionId: this.regionId } }));
    } else if (!replica.isLeader) this.fail(this.notLeader());
  }

  private onChanges(changes: AppliedChange[]): void {
    if (this.done) return;
    // The entry's data is kept only when the record's values lie there, and is then counted:
    // otherwise a watcher that does not read would hold every entry of the region uncounted.
    const items = changes.map((change) => {
      const record = change.rawRecord;
      const entryData = record && rawChangeRecordNeedsEntry(record) ? change.entryData : NO_DATA;
      return {
        change: { ...change, writes: [], entryData },
        bytes: (record?.length ?? 0) + entryData.length + CHANGE_OVERHEAD_BYTES,
      };
    });
    const over = tooMuchQueued(this.regionId, this.queuedBytes, items, this.deps, "index");
    if (over) return this.fail(over);
    for (const item of items) {
      this.queue.push(item);
      this.queuedBytes += item.bytes;
    }
    if (this.initialized) void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.done && this.queue.length > 0) {
        const item = this.queue.shift()!;
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
    if (change.index < expected) return; // in the snapshot's records already
    if (change.index > expected) {
      return this.fail(
        feedError(
          `region ${this.regionId}: this replica skipped raft entries ${expected}..${change.index - 1n} (it installed a snapshot); resubscribe`,
          { regionNotFound: { regionId: this.regionId } },
        ),
      );
    }
    this.nextIndex = expected + 1n;
    if (change.index <= this.sentIndex || !change.rawRecord) return;
    const record = decodeRawChangeRecord(change.rawRecord, change.entryData);
    if (record.kind === "split") return this.splitAt(change.index, record.regions);
    await this.sendRows(change.index, record, Event_LogType.COMMIT);
  }

  private async sendRows(index: bigint, record: RawChangeRecord, type: Event_LogType): Promise<void> {
    if (record.kind !== "changes") return;
    const rows: Event_Row[] = [];
    for (const c of record.changes) {
      if (c.cf !== CF_DEFAULT || !keyInRange(c.key, this.span.start, this.span.end)) continue;
      const put = c.op === "put";
      const atMs = put && c.expiresAtMs !== undefined ? BigInt(c.expiresAtMs) : 0n;
      rows.push({
        startTs: 0n,
        commitTs: 0n,
        type,
        opType: put ? Event_Row_OpType.PUT : Event_Row_OpType.DELETE,
        key: c.key,
        value: put ? c.value : Buffer.alloc(0),
        previousValue: Buffer.alloc(0),
        expireTsUnixSecs: (atMs + 999n) / 1000n,
        expiresAtMs: atMs,
      });
    }
    if (rows.length > 0) await this.send({ index, entries: { entries: rows } });
  }

  /** The region split at `index`: everything before it was sent; the watcher goes on in `regions`. */
  private splitAt(index: bigint, regions: Region[]): void {
    this.fail(
      feedError(`region ${this.regionId} split at index ${index}; resubscribe each part from there`, {
        epochNotMatch: { currentRegions: regions },
      }),
      index,
    );
  }

  private async send(ev: Partial<Event>): Promise<void> {
    if (this.done) return;
    const event: Event = { regionId: this.regionId, index: 0n, requestId: this.req.requestId, ...ev };
    if (!this.sink.write({ events: [event] })) await this.sink.drain();
  }

  private fail(error: CdcError, index = 0n): void {
    if (this.done) return;
    this.done = true;
    this.stop();
    this.sink.write({ events: [{ regionId: this.regionId, index, requestId: this.req.requestId, error }] });
    this.sink.end();
  }
}

/**
 * The region and applied index a kv snapshot holds, and the oldest from_index it can serve: the
 * records after the truncated index, and only those written since records began here (a replica
 * that applied entries before its build wrote records has none for them).
 */
async function stateIn(
  snap: EngineSnapshot,
  regionId: bigint,
): Promise<{ region: Region; appliedIndex: bigint; oldestIndex: bigint } | undefined> {
  const regionBytes = await snap.getMeta(regionStateKey(regionId));
  const applyBytes = await snap.getMeta(applyStateKey(regionId));
  if (!regionBytes || !applyBytes) return undefined;
  const region = RegionLocalState.decode(regionBytes).region;
  if (!region) return undefined;
  const apply = RaftApplyState.decode(applyBytes);
  const truncated = apply.truncatedState?.index ?? 0n;
  const since = decodeRawChangesSince(await snap.getMeta(rawChangesSinceKey(regionId))) ?? apply.appliedIndex;
  return { region, appliedIndex: apply.appliedIndex, oldestIndex: since > truncated ? since : truncated };
}

function spanWithin(span: KeySpan, region: Region): boolean {
  if (Buffer.compare(span.start, region.startKey) < 0) return false;
  if (region.endKey.length === 0) return true;
  return span.end.length > 0 && Buffer.compare(span.end, region.endKey) <= 0;
}

function initializedRow(): Event_Row {
  return {
    startTs: 0n,
    commitTs: 0n,
    type: Event_LogType.INITIALIZED,
    opType: Event_Row_OpType.UNKNOWN,
    key: Buffer.alloc(0),
    value: Buffer.alloc(0),
    previousValue: Buffer.alloc(0),
    expireTsUnixSecs: 0n,
    expiresAtMs: 0n,
  };
}
