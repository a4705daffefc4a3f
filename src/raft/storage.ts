// The application's persisted log as raft sees it, and an in-memory implementation
// (etcd/TinyKV style: ents[0] is a dummy entry holding the snapshot's index and term).
import type { ConfState, Entry, HardState, Snapshot } from "./eraftpb.js";
import {
  ErrCompacted,
  ErrInvalidConfig,
  ErrSnapOutOfDate,
  ErrSnapshotTemporarilyUnavailable,
  ErrUnavailable,
} from "./errors.js";
import { limitSize, newEntry } from "./util.js";

export interface RaftLogStorage {
  /** The persisted hard state and the membership as of the last applied conf change. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries [lo, hi); at least one entry even if it is over maxSizeBytes. May throw
   * ErrLogTemporarilyUnavailable for entries older than the storage keeps in memory, but never
   * for committed entries not yet applied (raft must hand those to the application).
   */
  entries(lo: bigint, hi: bigint, maxSizeBytes?: number): Entry[];
  /** Term of entry i; term(firstIndex-1) is the snapshot/truncated term. */
  term(i: bigint): bigint;
  firstIndex(): bigint;
  lastIndex(): bigint;
  /** May throw ErrSnapshotTemporarilyUnavailable while the application generates it. */
  snapshot(): Snapshot;
}

export function emptySnapshot(): Snapshot {
  return { data: Buffer.alloc(0), metadata: { confState: { nodes: [] }, index: 0n, term: 0n } };
}

export class MemoryStorage implements RaftLogStorage {
  private hardState: HardState = { term: 0n, vote: 0n, commit: 0n };
  private snap: Snapshot = emptySnapshot();
  private confState: ConfState = { nodes: [] };
  private ents: Entry[] = [newEntry({})];
  /** Tests set this to simulate an application still generating its snapshot. */
  snapshotUnavailable = false;

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: { nodes: [...this.confState.nodes] } };
  }

  /** Records the membership after the application applied a conf change (read on restart). */
  setConfState(cs: ConfState): void {
    this.confState = { nodes: [...cs.nodes] };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  private offset(): bigint {
    return this.ents[0]!.index;
  }

  firstIndex(): bigint {
    return this.offset() + 1n;
  }

  lastIndex(): bigint {
    return this.offset() + BigInt(this.ents.length - 1);
  }

  entries(lo: bigint, hi: bigint, maxSizeBytes?: number): Entry[] {
    const offset = this.offset();
    if (lo <= offset) throw new ErrCompacted(lo, offset + 1n);
    if (hi > this.lastIndex() + 1n) throw new ErrUnavailable(hi - 1n, this.lastIndex());
    if (lo > hi) throw new ErrInvalidConfig(`entries: lo ${lo} > hi ${hi}`);
    const ents = this.ents.slice(Number(lo - offset), Number(hi - offset));
    return maxSizeBytes === undefined ? ents : limitSize(ents, maxSizeBytes);
  }

  term(i: bigint): bigint {
    const offset = this.offset();
    if (i < offset) throw new ErrCompacted(i, offset + 1n);
    if (i - offset >= BigInt(this.ents.length)) throw new ErrUnavailable(i, this.lastIndex());
    return this.ents[Number(i - offset)]!.term;
  }

  snapshot(): Snapshot {
    if (this.snapshotUnavailable) throw new ErrSnapshotTemporarilyUnavailable();
    return this.snap;
  }

  /** Replaces the whole log with the snapshot (entries after it are dropped, as etcd does). */
  applySnapshot(snap: Snapshot): void {
    const index = snap.metadata?.index ?? 0n;
    const current = this.snap.metadata?.index ?? 0n;
    if (index <= current) throw new ErrSnapOutOfDate(index, current);
    this.snap = snap;
    this.ents = [newEntry({ index, term: snap.metadata?.term ?? 0n })];
    this.confState = { nodes: [...(snap.metadata?.confState?.nodes ?? [])] };
  }

  /** Records a snapshot of the state machine at index (the application compacts separately). */
  createSnapshot(index: bigint, confState: ConfState | undefined, data: Buffer): Snapshot {
    const current = this.snap.metadata?.index ?? 0n;
    if (index <= current) throw new ErrSnapOutOfDate(index, current);
    if (index > this.lastIndex()) throw new ErrUnavailable(index, this.lastIndex());
    const term = this.term(index);
    const cs = confState ?? this.confState;
    this.snap = { data, metadata: { index, term, confState: { nodes: [...cs.nodes] } } };
    return this.snap;
  }

  /** Discards entries up to and including compactIndex. */
  compact(compactIndex: bigint): void {
    const offset = this.offset();
    if (compactIndex <= offset) throw new ErrCompacted(compactIndex, offset + 1n);
    if (compactIndex > this.lastIndex()) throw new ErrUnavailable(compactIndex, this.lastIndex());
    const i = Number(compactIndex - offset);
    const dummy = newEntry({ index: this.ents[i]!.index, term: this.ents[i]!.term });
    this.ents = [dummy, ...this.ents.slice(i + 1)];
  }

  /** Appends entries, ignoring any already compacted and overwriting a conflicting suffix. */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + BigInt(entries.length) - 1n;
    if (last < first) return;
    if (first > entries[0]!.index) entries = entries.slice(Number(first - entries[0]!.index));
    const offset = entries[0]!.index - this.offset();
    const len = BigInt(this.ents.length);
    if (offset > len) {
      throw new ErrInvalidConfig(`missing log entry [last: ${this.lastIndex()}, append at: ${entries[0]!.index}]`);
    }
    if (offset < len) this.ents = this.ents.slice(0, Number(offset));
    for (const e of entries) this.ents.push(e);
  }
}
