/**
 * The simulation's raw watch: one watcher per region, on whichever store leads it, through the
 * store's real feed (RawRegionFeed on the store's ChangeHub, as the server runs it), resubscribed
 * from its last index whenever its feed ends (a leader change, a crash, a split). What it is told
 * must be what the region's entries did, once each and in raft order: every change row at index
 * i equals the raw change record a replica applied at i (within the watcher's span, CF default),
 * and no index between two told ones held a change in the span. A position the log no longer
 * holds ends the watcher's continuity (position_compacted is an answer, not a silent gap).
 */
import type { Store } from "../../../src/kv/raftstore/index.js";
import type { RaftstoreObserver } from "../../../src/kv/raftstore/index.js";
import { asBuffer } from "../../../src/kv/raftstore/peer-storage.js";
import { decodeRawChangeRecord, rawChangeRecordNeedsEntry } from "../../../src/kv/raftstore/raw-changes.js";
import { ChangeHub, DEFAULT_FEED_OPTIONS, feedStoreOf } from "../../../src/kv/watch/index.js";
import type { FeedSink } from "../../../src/kv/watch/index.js";
import { RawRegionFeed } from "../../../src/kv/watch/raw-feed.js";
import type { Event } from "../../../src/proto/cdcpb.js";
import type { Region } from "../../../src/proto/metapb.js";
import {
  ChangeDataRequest,
  ChangeDataRequest_KvAPI,
  Event_LogType,
  Event_Row_OpType,
} from "../../../src/proto/cdcpb.js";
import { CF_DEFAULT } from "../../../src/kv/engine/index.js";
import { keyInRange } from "../../../src/util/bytes.js";
import { silentLogger } from "../../../src/util/logger.js";
import type { Runtime } from "../../../src/util/runtime.js";

/** One change as a watcher sees it: `put k=v` or `delete k`. */
type Change = { key: Buffer; put?: Buffer };

interface Watcher {
  /** The last index it was told of (a change, INITIALIZED, or a split); 0: none yet. */
  lastIndex: bigint;
  feed?: RawRegionFeed;
  /** The store instance the feed runs on (a crashed store's is replaced, and its feeds hear nothing more). */
  on?: Store;
  span?: { start: Buffer; end: Buffer };
}

export interface RawWatchStats {
  rows: number;
  subscriptions: number;
  compacted: number;
}

const show = (c: Change) =>
  `${c.put ? "put" : "delete"} ${c.key.toString("latin1")}${c.put ? `=${c.put.length}B` : ""}`;

export class RawWatchCheck {
  private readonly hubs = new Map<bigint, ChangeHub>();
  private readonly stores = new Map<bigint, Store>();
  /** Per region and index, what its entry did to CF default raw keys (split: null), as the first replica applied it. */
  private readonly truth = new Map<bigint, Map<bigint, Change[] | null>>();
  private readonly watchers = new Map<bigint, Watcher>();
  private nextRequestId = 1n;
  private stopped = false;
  readonly stats: RawWatchStats = { rows: 0, subscriptions: 0, compacted: 0 };

  constructor(
    private readonly runtimeOf: (storeId: bigint) => Runtime,
    private readonly fail: (message: string) => void,
  ) {}

  /** A starting store's observer: `inner` plus its change hub, and the record of what each entry did. */
  observer(storeId: bigint, inner: RaftstoreObserver): RaftstoreObserver {
    const hub = new ChangeHub(silentLogger);
    this.hubs.set(storeId, hub);
    return hub.observer({
      ...inner,
      applied: (sid, peerId, regionId, entry, rawRecord) => {
        inner.applied?.(sid, peerId, regionId, entry, rawRecord);
        if (rawRecord) this.learn(regionId, entry.index, rawRecord, asBuffer(entry.data));
      },
    });
  }

  started(storeId: bigint, store: Store): void {
    this.stores.set(storeId, store);
    this.hubs.get(storeId)?.attach({ regionOf: (id) => store.peers.get(id)?.region });
  }

  /** Subscribes every led region that has no running watcher feed. */
  tick(): void {
    if (this.stopped) return;
    for (const w of this.watchers.values()) {
      if (!w.feed || (w.on && !w.on.stopped && [...this.stores.values()].includes(w.on))) continue;
      w.feed.close();
      w.feed = undefined;
    }
    for (const [storeId, store] of this.stores) {
      if (store.stopped) continue;
      for (const peer of store.peers.values()) {
        if (peer.destroyed || !peer.isLeader() || !peer.storage.isInitialized()) continue;
        const w = this.watchers.get(peer.regionId) ?? { lastIndex: 0n };
        this.watchers.set(peer.regionId, w);
        if (!w.feed) this.subscribe(storeId, store, peer.region, w);
      }
    }
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.watchers.values()) w.feed?.close();
  }

  private learn(regionId: bigint, index: bigint, rawRecord: Buffer, entryData: Buffer): void {
    const byIndex = this.truth.get(regionId) ?? new Map<bigint, Change[] | null>();
    this.truth.set(regionId, byIndex);
    if (byIndex.has(index)) return; // the raft checker holds every replica to the same record
    const record = decodeRawChangeRecord(rawRecord, rawChangeRecordNeedsEntry(rawRecord) ? entryData : undefined);
    byIndex.set(
      index,
      record.kind === "split"
        ? null
        : record.changes
            .filter((c) => c.cf === CF_DEFAULT)
            .map((c) => (c.op === "put" ? { key: c.key, put: c.value } : { key: c.key })),
    );
  }

  private subscribe(storeId: bigint, store: Store, region: Region, w: Watcher): void {
    const span = { start: region.startKey, end: region.endKey };
    const req = ChangeDataRequest.fromPartial({
      regionId: region.id,
      regionEpoch: region.regionEpoch,
      kvApi: ChangeDataRequest_KvAPI.RawKV,
      fromIndex: w.lastIndex,
      startKey: span.start,
      endKey: span.end,
      requestId: this.nextRequestId++,
    });
    const hub = this.hubs.get(storeId)!;
    let feed: RawRegionFeed | undefined;
    const sink: FeedSink = {
      write: (ev) => {
        for (const e of ev.events) if (w.feed === feed) this.told(region.id, w, e);
        return true;
      },
      drain: async () => {},
      end: () => {
        if (w.feed === feed) w.feed = undefined;
      },
    };
    feed = new RawRegionFeed(
      req,
      {
        store: feedStoreOf(store),
        hub,
        runtime: this.runtimeOf(storeId),
        log: silentLogger,
        options: DEFAULT_FEED_OPTIONS,
      },
      sink,
    );
    w.feed = feed;
    w.on = store;
    w.span = span;
    this.stats.subscriptions++;
    feed.start().catch((err: unknown) => this.fail(`raw watch: region ${region.id}'s feed threw: ${String(err)}`));
  }

  private told(regionId: bigint, w: Watcher, e: Event): void {
    if (e.error) {
      if (e.error.positionCompacted) {
        this.stats.compacted++;
        w.lastIndex = 0n; // from now: the log no longer holds what came after the last index
      } else if (e.error.epochNotMatch && e.index > w.lastIndex) {
        if (w.lastIndex !== 0n) this.noChangesUpTo(regionId, w, e.index + 1n);
        w.lastIndex = e.index; // a split: everything before it was sent
      }
      return; // the feed ends; the next tick subscribes again from lastIndex
    }
    const rows = e.entries?.entries ?? [];
    if (rows.length === 0) return;
    if (rows[0]!.type === Event_LogType.INITIALIZED) {
      if (w.lastIndex !== 0n) this.noChangesUpTo(regionId, w, e.index + 1n);
      if (e.index > w.lastIndex) w.lastIndex = e.index;
      return;
    }
    if (e.index <= w.lastIndex)
      return this.fail(
        `raw watch: region ${regionId} told index ${e.index} again or out of order (after ${w.lastIndex})`,
      );
    if (w.lastIndex !== 0n) this.noChangesUpTo(regionId, w, e.index);
    const got: Change[] = rows.map((r) =>
      r.opType === Event_Row_OpType.PUT
        ? { key: Buffer.from(r.key), put: Buffer.from(r.value) }
        : { key: Buffer.from(r.key) },
    );
    const want = this.inSpan(this.truth.get(regionId)?.get(e.index), w);
    const same =
      want !== undefined &&
      want.length === got.length &&
      want.every(
        (c, i) =>
          c.key.equals(got[i]!.key) &&
          (c.put === undefined
            ? got[i]!.put === undefined
            : c.put.equals(got[i]!.put ?? Buffer.alloc(0)) && got[i]!.put !== undefined),
      );
    if (!same)
      return this.fail(
        `raw watch: region ${regionId} index ${e.index}: told [${got.map(show).join(", ")}], the entry did [${(want ?? []).map(show).join(", ")}]${want === undefined ? " (no record applied there)" : ""}`,
      );
    this.stats.rows += got.length;
    w.lastIndex = e.index;
  }

  /** No entry in (lastIndex, before) changed a key of the watcher's span: else the watcher missed it. */
  private noChangesUpTo(regionId: bigint, w: Watcher, before: bigint): void {
    const byIndex = this.truth.get(regionId);
    if (!byIndex) return;
    for (let i = w.lastIndex + 1n; i < before; i++) {
      const missed = this.inSpan(byIndex.get(i), w);
      if (missed && missed.length > 0)
        return this.fail(
          `raw watch: region ${regionId} index ${i}: [${missed.map(show).join(", ")}] was never told (the watcher went from ${w.lastIndex} to ${before})`,
        );
    }
  }

  private inSpan(changes: Change[] | null | undefined, w: Watcher): Change[] | undefined {
    if (changes === undefined || changes === null) return changes === null ? [] : undefined;
    const span = w.span!;
    return changes.filter((c) => keyInRange(c.key, span.start, span.end));
  }
}
