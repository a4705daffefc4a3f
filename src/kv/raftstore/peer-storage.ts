import {
  ErrCompacted,
  ErrLogTemporarilyUnavailable,
  ErrSnapshotTemporarilyUnavailable,
  ErrUnavailable,
} from "../../raft/errors.js";
import type { RaftLogStorage } from "../../raft/storage.js";
import type { ConfState, Snapshot } from "../../raft/eraftpb.js";
import { Entry, HardState } from "../../raft/eraftpb.js";
import type { Region } from "../../proto/metapb.js";
import { RaftApplyState, RaftLocalState, RegionLocalState, PeerState } from "../../proto/raft_serverpb.js";
import type { Engine, WriteBatch } from "../engine/index.js";
import { entryBytes, RaftLogCache } from "./entry-cache.js";
import { applyStateKey, raftLogKey, raftStateKey, rawChangesSinceKey, regionStateKey } from "./keys.js";
import { decodeRawChangesSince } from "./raw-changes.js";

/**
 * An encoder's output as a Buffer without copying it: an encoder returns a fresh array it
 * keeps no reference to, and Buffer.from(array) would copy every entry and state once more.
 */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The raft state of a log that starts empty right after (index, term). */
export function initialRaftState(hs: HardState | undefined, index: bigint, term: bigint): RaftLocalState {
  const h = hs ?? HardState.create();
  return {
    hardState: {
      term: h.term > term ? h.term : term,
      vote: h.term > term ? h.vote : 0n,
      commit: h.commit > index ? h.commit : index,
    },
    lastIndex: index,
    lastTerm: term,
  };
}

/** A snapshot that has been generated to a file and can be handed to raft. */
export interface GeneratedSnapshot {
  snapshot: Snapshot;
  path: string;
  /** The region as it was at the snapshot's index. */
  region: Region;
}

/** Older entries raft asked for, to read from the raft engine (see log-fetch.ts). */
export interface LogFetchRequest {
  lo: bigint;
  /** Exclusive; never above the first cached entry. */
  hi: bigint;
  maxSize: number | undefined;
}

/** Fetched batches kept for raft to pick up; more are dropped (raft asks again). */
const MAX_FETCHED_BATCHES = 8;

/**
 * Raft's view of one peer's persisted log, over the raft engine. Raft's Storage interface is
 * synchronous and LevelDB is not, so terms of the whole live log and the newest entries (every
 * unapplied one, applied ones up to a byte budget) are held in memory; older entries are read
 * back in the background when a follower needs them (ErrLogTemporarilyUnavailable, then
 * RawNode.onEntriesFetched). Writes go into the store loop's batches; memory is updated as they
 * are queued, and the store only acknowledges raft after the batch is durable.
 */
export class PeerStorage implements RaftLogStorage {
  /** The live log (truncated.index, lastIndex]: terms and sizes of all, the newest entries. */
  private log: RaftLogCache;
  private readonly fetchWanted = new Map<bigint, LogFetchRequest>();
  private readonly fetching = new Set<bigint>();
  private readonly fetched = new Map<bigint, Entry[]>();
  /** Set by the snapshot generator; consumed by raft via snapshot(). */
  generated: GeneratedSnapshot | undefined;
  /** Raft asked for a snapshot and none is ready: the store should generate one. */
  snapshotRequested = false;
  /** Every entry after it has its raw change record (raw-changes.ts); undefined: not written yet. */
  rawChangesSince: bigint | undefined;

  constructor(
    public region: Region,
    public raftState: RaftLocalState,
    public applyState: RaftApplyState,
    entries: Entry[],
  ) {
    this.log = new RaftLogCache(applyState.truncatedState!.index + 1n);
    this.log.append(entries);
  }

  /** Loads a peer's states and live log from the engines (after a restart or for a new region). */
  static async load(kv: Engine, raft: Engine, region: Region): Promise<PeerStorage> {
    const raftBuf = await raft.getMeta(raftStateKey(region.id));
    const applyBuf = await kv.getMeta(applyStateKey(region.id));
    let raftState = raftBuf ? RaftLocalState.decode(raftBuf) : RaftLocalState.create({ hardState: HardState.create() });
    const applyState = applyBuf
      ? RaftApplyState.decode(applyBuf)
      : RaftApplyState.create({ truncatedState: { index: 0n, term: 0n } });
    const truncated = applyState.truncatedState!;
    // The kv engine is ahead of the raft engine: a region created by a split (its raft state is
    // written later) or a snapshot whose raft-state write was lost in a crash. The log restarts
    // right after the truncated state, and the term must not be below the log's last term.
    if (raftState.lastIndex < truncated.index)
      raftState = initialRaftState(raftState.hardState, truncated.index, truncated.term);
    // Applied entries are committed by definition; a raft state written a turn later than the
    // kv batch (a region created by a split) may still hold an older commit index.
    const hs = raftState.hardState ?? HardState.create();
    if (hs.commit < applyState.appliedIndex)
      raftState = { ...raftState, hardState: { ...hs, commit: applyState.appliedIndex } };
    const storage = new PeerStorage(region, raftState, applyState, []);
    storage.rawChangesSince = decodeRawChangesSince(await kv.getMeta(rawChangesSinceKey(region.id)));
    if (raftState.lastIndex > truncated.index) {
      // Only the unapplied entries stay in memory; of the others, raft needs only the terms.
      const log = new RaftLogCache(truncated.index + 1n);
      const unapplied: Entry[] = [];
      let next = truncated.index + 1n;
      const snap = raft.snapshot();
      try {
        for await (const { value } of snap.rawRange(
          raftLogKey(region.id, next),
          raftLogKey(region.id, raftState.lastIndex + 1n),
        )) {
          const e = Entry.decode(value);
          if (e.index !== next) break;
          next++;
          if (e.index > applyState.appliedIndex) unapplied.push(e);
          else log.appendUncached(e);
        }
      } finally {
        await snap.close();
      }
      if (next !== raftState.lastIndex + 1n) {
        const expected = raftState.lastIndex - truncated.index;
        throw new Error(
          `region ${region.id}: raft log is corrupt: expected ${expected} entries after ${truncated.index}, found ${next - truncated.index - 1n} in sequence`,
        );
      }
      log.append(unapplied);
      storage.log = log;
    }
    return storage;
  }

  isInitialized(): boolean {
    return this.region.peers.length > 0;
  }

  get truncatedIndex(): bigint {
    return this.applyState.truncatedState!.index;
  }

  get truncatedTerm(): bigint {
    return this.applyState.truncatedState!.term;
  }

  get appliedIndex(): bigint {
    return this.applyState.appliedIndex;
  }

  // ---- RaftLogStorage ----

  initialState(): { hardState: HardState; confState: ConfState } {
    return {
      hardState: { ...(this.raftState.hardState ?? HardState.create()) },
      confState: { nodes: this.region.peers.map((p) => p.id) },
    };
  }

  entries(lo: bigint, hi: bigint, maxSizeBytes?: number): Entry[] {
    if (lo <= this.truncatedIndex) throw new ErrCompacted(lo, this.truncatedIndex + 1n);
    if (hi > this.raftState.lastIndex + 1n) throw new ErrUnavailable(hi - 1n, this.raftState.lastIndex);
    const cacheFirst = this.log.cacheFirst;
    if (lo >= cacheFirst) return this.log.slice(lo, hi, maxSizeBytes);
    const fetched = this.fetched.get(lo);
    if (fetched) {
      // One use: the follower moves on, and an unused batch must not pin memory.
      this.fetched.delete(lo);
      return limitEntries(fetched, hi, maxSizeBytes);
    }
    if (!this.fetching.has(lo) && !this.fetchWanted.has(lo)) {
      this.fetchWanted.set(lo, { lo, hi: hi < cacheFirst ? hi : cacheFirst, maxSize: maxSizeBytes });
    }
    throw new ErrLogTemporarilyUnavailable(lo, hi);
  }

  term(i: bigint): bigint {
    if (i === this.truncatedIndex) return this.truncatedTerm;
    if (i < this.truncatedIndex) throw new ErrCompacted(i, this.truncatedIndex + 1n);
    if (i > this.raftState.lastIndex) throw new ErrUnavailable(i, this.raftState.lastIndex);
    return this.log.term(i);
  }

  firstIndex(): bigint {
    return this.truncatedIndex + 1n;
  }

  lastIndex(): bigint {
    return this.raftState.lastIndex;
  }

  snapshot(): Snapshot {
    const gen = this.generated;
    // A generated snapshot is usable while the log still continues right after it and the
    // region has not changed since: a follower added after it was taken would otherwise
    // install a membership without itself and then replay its own earlier removal.
    const cur = this.region.regionEpoch!;
    const epoch = gen?.region.regionEpoch;
    if (
      gen &&
      gen.snapshot.metadata!.index >= this.truncatedIndex &&
      epoch &&
      epoch.confVer === cur.confVer &&
      epoch.version === cur.version
    )
      return gen.snapshot;
    this.snapshotRequested = true;
    throw new ErrSnapshotTemporarilyUnavailable(`region ${this.region.id}: snapshot is being generated`);
  }

  // ---- memory bounds and background reads ----

  /** Bytes of every entry in the live log (log GC by size). */
  get logBytes(): number {
    return this.log.logBytes;
  }

  /** Bytes of the entries held in memory. */
  get cachedBytes(): number {
    return this.log.cachedBytes;
  }

  /** Bytes of the live entries [lo, hi). */
  logBytesBetween(lo: bigint, hi: bigint): number {
    return this.log.bytesBetween(lo, hi);
  }

  /**
   * Drops the oldest cached entries while the cache is over `limitBytes`, only among those both
   * the store and raft have applied (raft still reads unapplied ones synchronously).
   */
  evictEntryCache(raftApplied: bigint, limitBytes: number): void {
    const applied = this.appliedIndex < raftApplied ? this.appliedIndex : raftApplied;
    this.log.evict(applied, limitBytes);
  }

  /** The reads raft asked for since the last call; each is reported back by onFetched or onFetchFailed. */
  takeFetchRequests(): LogFetchRequest[] {
    if (this.fetchWanted.size === 0) return [];
    const reqs = [...this.fetchWanted.values()];
    this.fetchWanted.clear();
    for (const r of reqs) this.fetching.add(r.lo);
    return reqs;
  }

  onFetched(lo: bigint, entries: Entry[]): void {
    this.fetching.delete(lo);
    if (entries.length === 0 || lo <= this.truncatedIndex || entries[0]!.index !== lo) return;
    this.fetched.set(lo, entries);
    if (this.fetched.size > MAX_FETCHED_BATCHES) this.fetched.delete(this.fetched.keys().next().value!);
  }

  onFetchFailed(lo: bigint): void {
    this.fetching.delete(lo);
  }

  // ---- writes (into the store loop's batches) ----

  /** Appends entries (overwriting a conflicting suffix) in the raft batch and the cache. */
  append(entries: Entry[], raftWb: WriteBatch): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    if (first <= this.truncatedIndex)
      throw new Error(
        `region ${this.region.id}: append at ${first} is below the truncated index ${this.truncatedIndex}`,
      );
    const oldLast = this.raftState.lastIndex;
    if (first > oldLast + 1n)
      throw new Error(`region ${this.region.id}: append at ${first} leaves a gap after the last index ${oldLast}`);
    for (const e of entries) raftWb.putMeta(raftLogKey(this.region.id, e.index), asBuffer(Entry.encode(e).finish()));
    const newLast = entries[entries.length - 1]!.index;
    for (let i = newLast + 1n; i <= oldLast; i++) raftWb.deleteMeta(raftLogKey(this.region.id, i));
    this.log.append(entries);
    this.raftState = { ...this.raftState, lastIndex: newLast, lastTerm: entries[entries.length - 1]!.term };
  }

  setHardState(hs: HardState): void {
    this.raftState = { ...this.raftState, hardState: { ...hs } };
  }

  writeRaftState(raftWb: WriteBatch): void {
    raftWb.putMeta(raftStateKey(this.region.id), asBuffer(RaftLocalState.encode(this.raftState).finish()));
  }

  writeApplyState(kvWb: WriteBatch): void {
    kvWb.putMeta(applyStateKey(this.region.id), asBuffer(RaftApplyState.encode(this.applyState).finish()));
  }

  writeRegionState(kvWb: WriteBatch, state: PeerState = PeerState.Normal): void {
    kvWb.putMeta(
      regionStateKey(this.region.id),
      asBuffer(RegionLocalState.encode({ state, region: this.region }).finish()),
    );
  }

  /**
   * Applies a CompactLog: moves the truncated state and drops the cached entries; returns the
   * old truncated index so the store can delete (old, index] from the raft engine once the
   * kv batch carrying the new truncated state is durable.
   */
  compactTo(index: bigint, term: bigint): bigint | undefined {
    const old = this.truncatedIndex;
    if (index <= old || index > this.applyState.appliedIndex) return undefined;
    this.log.compactTo(index);
    for (const lo of this.fetched.keys()) if (lo <= index) this.fetched.delete(lo);
    this.applyState = { ...this.applyState, truncatedState: { index, term } };
    return old;
  }

  deleteLogRange(raftWb: WriteBatch, fromExclusive: bigint, toInclusive: bigint): void {
    for (let i = fromExclusive + 1n; i <= toInclusive; i++) raftWb.deleteMeta(raftLogKey(this.region.id, i));
  }

  /** After installing a snapshot: the log restarts right after it. Returns the old log bounds for deletion. */
  resetToSnapshot(region: Region, index: bigint, term: bigint): { oldFirst: bigint; oldLast: bigint } {
    const old = { oldFirst: this.truncatedIndex + 1n, oldLast: this.raftState.lastIndex };
    this.region = region;
    this.log = new RaftLogCache(index + 1n);
    this.fetched.clear();
    this.fetchWanted.clear();
    this.applyState = { appliedIndex: index, truncatedState: { index, term } };
    this.raftState = initialRaftState(this.raftState.hardState, index, term);
    this.rawChangesSince = index;
    this.generated = undefined;
    return old;
  }
}

/** The entries of a fetched batch below `hi`, at least one, stopping before maxSize bytes. */
function limitEntries(entries: Entry[], hi: bigint, maxSize: number | undefined): Entry[] {
  const out: Entry[] = [];
  let size = 0;
  for (const e of entries) {
    if (e.index >= hi) break;
    size += entryBytes(e);
    if (out.length > 0 && maxSize !== undefined && size > maxSize) break;
    out.push(e);
  }
  return out;
}
