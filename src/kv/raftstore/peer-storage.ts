import { ErrCompacted, ErrSnapshotTemporarilyUnavailable, ErrUnavailable } from "../../raft/errors.js";
import type { RaftStorage } from "../../raft/storage.js";
import { Entry, HardState, type ConfState, type Snapshot } from "../../raft/eraftpb.js";
import type { Region } from "../../proto/metapb.js";
import { RaftApplyState, RaftLocalState, RegionLocalState, PeerState } from "../../proto/raft_serverpb.js";
import type { Engine, WriteBatch } from "../engine/index.js";
import { applyStateKey, raftLogKey, raftStateKey, regionStateKey } from "./keys.js";

/** The raft state of a log that starts empty right after (index, term). */
export function initialRaftState(hs: HardState | undefined, index: bigint, term: bigint): RaftLocalState {
  const h = hs ?? HardState.create();
  return {
    hardState: { term: h.term > term ? h.term : term, vote: h.term > term ? h.vote : 0n, commit: h.commit > index ? h.commit : index },
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

/**
 * Raft's view of one peer's persisted log, over the raft engine, with the live part of the log
 * cached in memory (raft's Storage interface is synchronous, LevelDB is not). The cache is
 * bounded by log GC. Writes go into the store loop's batches; memory is updated as they are
 * queued, and the store only acknowledges raft after the batch is durable.
 */
export class PeerStorage implements RaftStorage {
  /** Entries (truncated.index, lastIndex]; entries[0] has index truncated.index + 1. */
  private cache: Entry[];
  /** Set by the snapshot generator; consumed by raft via snapshot(). */
  generated: GeneratedSnapshot | undefined;
  /** Raft asked for a snapshot and none is ready: the store should generate one. */
  snapshotRequested = false;

  constructor(
    public region: Region,
    public raftState: RaftLocalState,
    public applyState: RaftApplyState,
    entries: Entry[],
  ) {
    this.cache = entries;
  }

  /** Loads a peer's states and live log from the engines (after a restart or for a new region). */
  static async load(kv: Engine, raft: Engine, region: Region): Promise<PeerStorage> {
    const raftBuf = await raft.getMeta(raftStateKey(region.id));
    const applyBuf = await kv.getMeta(applyStateKey(region.id));
    let raftState = raftBuf ? RaftLocalState.decode(raftBuf) : RaftLocalState.create({ hardState: HardState.create() });
    const applyState = applyBuf ? RaftApplyState.decode(applyBuf) : RaftApplyState.create({ truncatedState: { index: 0n, term: 0n } });
    const truncated = applyState.truncatedState!;
    // The kv engine is ahead of the raft engine: a region created by a split (its raft state is
    // written later) or a snapshot whose raft-state write was lost in a crash. The log restarts
    // right after the truncated state, and the term must not be below the log's last term.
    if (raftState.lastIndex < truncated.index) raftState = initialRaftState(raftState.hardState, truncated.index, truncated.term);
    // Applied entries are committed by definition; a raft state written a turn later than the
    // kv batch (a region created by a split) may still hold an older commit index.
    const hs = raftState.hardState ?? HardState.create();
    if (hs.commit < applyState.appliedIndex) raftState = { ...raftState, hardState: { ...hs, commit: applyState.appliedIndex } };
    const entries: Entry[] = [];
    if (raftState.lastIndex > truncated.index) {
      const snap = raft.snapshot();
      try {
        for await (const { value } of snap.rawRange(raftLogKey(region.id, truncated.index + 1n), raftLogKey(region.id, raftState.lastIndex + 1n))) {
          entries.push(Entry.decode(value));
        }
      } finally {
        await snap.close();
      }
      const expected = Number(raftState.lastIndex - truncated.index);
      if (entries.length !== expected || (entries.length > 0 && entries[0]!.index !== truncated.index + 1n)) {
        throw new Error(`region ${region.id}: raft log is corrupt: expected ${expected} entries after ${truncated.index}, found ${entries.length}`);
      }
    }
    return new PeerStorage(region, raftState, applyState, entries);
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

  // ---- RaftStorage ----

  initialState(): { hardState: HardState; confState: ConfState } {
    return {
      hardState: { ...(this.raftState.hardState ?? HardState.create()) },
      confState: { nodes: this.region.peers.map((p) => p.id) },
    };
  }

  entries(lo: bigint, hi: bigint, maxSizeBytes?: number): Entry[] {
    if (lo <= this.truncatedIndex) throw new ErrCompacted(lo, this.truncatedIndex + 1n);
    if (hi > this.raftState.lastIndex + 1n) throw new ErrUnavailable(hi - 1n, this.raftState.lastIndex);
    const base = this.truncatedIndex + 1n;
    const out: Entry[] = [];
    let size = 0;
    for (let i = Number(lo - base); i < Number(hi - base); i++) {
      const e = this.cache[i]!;
      size += e.data.length + 24;
      if (out.length > 0 && maxSizeBytes !== undefined && size > maxSizeBytes) break;
      out.push(e);
    }
    return out;
  }

  term(i: bigint): bigint {
    if (i === this.truncatedIndex) return this.truncatedTerm;
    if (i < this.truncatedIndex) throw new ErrCompacted(i, this.truncatedIndex + 1n);
    if (i > this.raftState.lastIndex) throw new ErrUnavailable(i, this.raftState.lastIndex);
    return this.cache[Number(i - this.truncatedIndex - 1n)]!.term;
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
    if (gen && gen.snapshot.metadata!.index >= this.truncatedIndex && epoch && epoch.confVer === cur.confVer && epoch.version === cur.version) return gen.snapshot;
    this.snapshotRequested = true;
    throw new ErrSnapshotTemporarilyUnavailable(`region ${this.region.id}: snapshot is being generated`);
  }

  // ---- writes (into the store loop's batches) ----

  /** Appends entries (overwriting a conflicting suffix) in the raft batch and the cache. */
  append(entries: Entry[], raftWb: WriteBatch): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    if (first <= this.truncatedIndex) throw new Error(`region ${this.region.id}: append at ${first} is below the truncated index ${this.truncatedIndex}`);
    const oldLast = this.raftState.lastIndex;
    for (const e of entries) raftWb.putMeta(raftLogKey(this.region.id, e.index), Buffer.from(Entry.encode(e).finish()));
    const newLast = entries[entries.length - 1]!.index;
    for (let i = newLast + 1n; i <= oldLast; i++) raftWb.deleteMeta(raftLogKey(this.region.id, i));
    this.cache.length = Number(first - this.truncatedIndex - 1n);
    for (const e of entries) this.cache.push(e);
    this.raftState = { ...this.raftState, lastIndex: newLast, lastTerm: entries[entries.length - 1]!.term };
  }

  setHardState(hs: HardState): void {
    this.raftState = { ...this.raftState, hardState: { ...hs } };
  }

  writeRaftState(raftWb: WriteBatch): void {
    raftWb.putMeta(raftStateKey(this.region.id), Buffer.from(RaftLocalState.encode(this.raftState).finish()));
  }

  writeApplyState(kvWb: WriteBatch): void {
    kvWb.putMeta(applyStateKey(this.region.id), Buffer.from(RaftApplyState.encode(this.applyState).finish()));
  }

  writeRegionState(kvWb: WriteBatch, state: PeerState = PeerState.Normal): void {
    kvWb.putMeta(regionStateKey(this.region.id), Buffer.from(RegionLocalState.encode({ state, region: this.region }).finish()));
  }

  /**
   * Applies a CompactLog: moves the truncated state and drops the cached entries; returns the
   * old truncated index so the store can delete (old, index] from the raft engine once the
   * kv batch carrying the new truncated state is durable.
   */
  compactTo(index: bigint, term: bigint): bigint | undefined {
    const old = this.truncatedIndex;
    if (index <= old || index > this.applyState.appliedIndex) return undefined;
    this.cache.splice(0, Number(index - old));
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
    this.cache = [];
    this.applyState = { appliedIndex: index, truncatedState: { index, term } };
    this.raftState = initialRaftState(this.raftState.hardState, index, term);
    this.generated = undefined;
    return old;
  }
}
