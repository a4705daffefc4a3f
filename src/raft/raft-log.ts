// The raft log as raft sees it: the application's stable storage followed by the unstable tail.
// Indexes: [firstIndex-1 = snapshot index] [stable entries ...] [unstable entries ...] lastIndex.
import type { Entry, Snapshot } from "./eraftpb.js";
import { ErrCompacted, ErrInvariant, ErrUnavailable } from "./errors.js";
import type { RaftLogStorage } from "./storage.js";
import { Unstable } from "./unstable.js";
import { limitSize, maxBig, minBig } from "./util.js";

export class RaftLog {
  readonly storage: RaftLogStorage;
  readonly unstable: Unstable;
  /** Highest index known to be stored on a quorum. */
  committed: bigint;
  /** Highest index handed to the application to apply (in a Ready not yet advanced, or applied). */
  applying: bigint;
  /** Highest index the application acknowledged as applied. */
  applied: bigint;

  constructor(storage: RaftLogStorage) {
    this.storage = storage;
    const first = storage.firstIndex();
    this.unstable = new Unstable(storage.lastIndex() + 1n);
    this.committed = first - 1n;
    this.applying = first - 1n;
    this.applied = first - 1n;
  }

  /** Last index the application has persisted (TinyKV's RaftLog.stabled). */
  get stabled(): bigint {
    return this.unstable.offset - 1n;
  }

  /** A snapshot received from the leader that the application has not installed yet. */
  get pendingSnapshot(): Snapshot | undefined {
    return this.unstable.snapshot;
  }

  firstIndex(): bigint {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): bigint {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term of entry i; throws ErrCompacted below the snapshot index, ErrUnavailable past the end. */
  term(i: bigint): bigint {
    const dummy = this.firstIndex() - 1n;
    if (i < dummy) throw new ErrCompacted(i, dummy + 1n);
    if (i > this.lastIndex()) throw new ErrUnavailable(i, this.lastIndex());
    const t = this.unstable.maybeTerm(i);
    return t !== undefined ? t : this.storage.term(i);
  }

  /** term(i), or undefined when the entry is compacted or missing. */
  termOrUndefined(i: bigint): bigint | undefined {
    // Bounds are checked first: this is on the hot path and exceptions are costly.
    if (i < this.firstIndex() - 1n || i > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e instanceof ErrCompacted || e instanceof ErrUnavailable) return undefined;
      throw e;
    }
  }

  lastTerm(): bigint {
    return this.term(this.lastIndex());
  }

  matchTerm(i: bigint, t: bigint): boolean {
    return this.termOrUndefined(i) === t;
  }

  isUpToDate(lastIndex: bigint, term: bigint): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Follower side of AppendEntries; returns the last new index, or undefined on a mismatch. */
  maybeAppend(index: bigint, logTerm: bigint, committed: bigint, ents: Entry[]): bigint | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + BigInt(ents.length);
    const ci = this.findConflict(ents);
    if (ci !== 0n) {
      if (ci <= this.committed) {
        throw new ErrInvariant(`entry ${ci} conflicts with committed entry (committed ${this.committed})`);
      }
      this.append(ents.slice(Number(ci - (index + 1n))));
    }
    this.commitTo(minBig(committed, lastNew));
    return lastNew;
  }

  append(ents: Entry[]): bigint {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1n;
    if (after < this.committed) {
      throw new ErrInvariant(`append after ${after} is below committed ${this.committed}`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** First index whose term differs from ours (or that we lack); 0 if all match. */
  findConflict(ents: Entry[]): bigint {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0n;
  }

  /**
   * Largest index <= index whose term is <= term, with that term (0 if unknown). Used for fast
   * backtracking: every entry above it certainly conflicts with the other side's log.
   */
  findConflictByTerm(index: bigint, term: bigint): [bigint, bigint] {
    for (; index > 0n; index--) {
      const t = this.termOrUndefined(index);
      if (t === undefined) return [index, 0n];
      if (t <= term) return [index, t];
    }
    return [0n, 0n];
  }

  /** Entries from i on, at most maxSize bytes (at least one). */
  entries(i: bigint, maxSize?: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1n, maxSize);
  }

  /** Every entry still in the log (tests). */
  allEntries(): Entry[] {
    return this.entries(this.firstIndex());
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  slice(lo: bigint, hi: bigint, maxSize?: number): Entry[] {
    if (lo > hi) throw new ErrInvariant(`invalid slice ${lo} > ${hi}`);
    const first = this.firstIndex();
    if (lo < first) throw new ErrCompacted(lo, first);
    if (hi > this.lastIndex() + 1n) throw new ErrUnavailable(hi - 1n, this.lastIndex());
    if (lo === hi) return [];
    const offset = this.unstable.offset;
    let ents: Entry[] = [];
    if (lo < offset) {
      const stableHi = minBig(hi, offset);
      ents = this.storage.entries(lo, stableHi, maxSize);
      // Storage stopped early because of the size limit: nothing from unstable fits.
      if (BigInt(ents.length) < stableHi - lo) return ents;
    }
    if (hi > offset) {
      const u = this.unstable.slice(maxBig(lo, offset), hi);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return maxSize === undefined ? ents : limitSize(ents, maxSize);
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined;
  }

  /** Committed entries not yet handed to the application (none while a snapshot is pending). */
  nextCommittedEnts(): Entry[] {
    if (this.hasPendingSnapshot()) return [];
    const lo = maxBig(this.applying + 1n, this.firstIndex());
    const hi = this.committed + 1n;
    return lo >= hi ? [] : this.slice(lo, hi);
  }

  hasNextCommittedEnts(): boolean {
    if (this.hasPendingSnapshot()) return false;
    return this.committed >= maxBig(this.applying + 1n, this.firstIndex());
  }

  /** TinyKV's nextEnts: committed entries the application has not been given yet. */
  nextEnts(): Entry[] {
    return this.nextCommittedEnts();
  }

  maybeCommit(maxIndex: bigint, term: bigint): boolean {
    if (maxIndex > this.committed && this.termOrUndefined(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  commitTo(toCommit: bigint): void {
    if (this.committed >= toCommit) return;
    if (this.lastIndex() < toCommit) {
      throw new ErrInvariant(`commit ${toCommit} is out of range [lastIndex ${this.lastIndex()}]`);
    }
    this.committed = toCommit;
  }

  acceptApplying(i: bigint): void {
    if (i > this.applying) this.applying = i;
  }

  appliedTo(i: bigint): void {
    if (i === 0n || i <= this.applied) return;
    if (i > this.committed) {
      throw new ErrInvariant(`applied ${i} is out of range [applied ${this.applied}, committed ${this.committed}]`);
    }
    this.applied = i;
    if (this.applying < i) this.applying = i;
  }

  stableTo(i: bigint, t: bigint): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: bigint): void {
    this.unstable.stableSnapTo(i);
  }

  /** The newest snapshot: a pending one from the leader, else the application's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  restore(s: Snapshot): void {
    this.committed = s.metadata!.index;
    this.unstable.restore(s);
  }
}
