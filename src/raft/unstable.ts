// Entries and a snapshot that raft holds but the application has not yet persisted.
// entries[i] has index offset+i. "In progress" marks what a Ready already handed out, so a
// second Ready (before advance) does not hand it out again.
import type { Entry, Snapshot } from "./eraftpb.js";
import { ErrInvariant } from "./errors.js";

export class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  offset: bigint;
  /** entries with index < offsetInProgress were handed out in a Ready and await advance. */
  offsetInProgress: bigint;
  snapshotInProgress = false;

  constructor(offset: bigint) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  maybeFirstIndex(): bigint | undefined {
    return this.snapshot ? this.snapshot.metadata!.index + 1n : undefined;
  }

  maybeLastIndex(): bigint | undefined {
    if (this.entries.length > 0) return this.offset + BigInt(this.entries.length) - 1n;
    return this.snapshot ? this.snapshot.metadata!.index : undefined;
  }

  maybeTerm(i: bigint): bigint | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata!.index === i) return this.snapshot.metadata!.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[Number(i - this.offset)]!.term;
  }

  /** Entries not yet handed out in a Ready. */
  nextEntries(): Entry[] {
    const inProgress = Number(this.offsetInProgress - this.offset);
    return inProgress >= this.entries.length ? [] : this.entries.slice(inProgress);
  }

  nextSnapshot(): Snapshot | undefined {
    return this.snapshot && !this.snapshotInProgress ? this.snapshot : undefined;
  }

  acceptInProgress(): void {
    if (this.entries.length > 0) this.offsetInProgress = this.offset + BigInt(this.entries.length);
    if (this.snapshot) this.snapshotInProgress = true;
  }

  /** The application persisted entries up to (i, t). Ignored if the log changed meanwhile. */
  stableTo(i: bigint, t: bigint): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined || gt !== t || i < this.offset) return;
    const n = Number(i + 1n - this.offset);
    this.entries = this.entries.slice(n);
    this.offset = i + 1n;
    if (this.offsetInProgress < this.offset) this.offsetInProgress = this.offset;
  }

  stableSnapTo(i: bigint): void {
    if (this.snapshot && this.snapshot.metadata!.index === i) {
      this.snapshot = undefined;
      this.snapshotInProgress = false;
    }
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata!.index + 1n;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = s;
    this.snapshotInProgress = false;
  }

  truncateAndAppend(ents: Entry[]): void {
    const fromIndex = ents[0]!.index;
    const end = this.offset + BigInt(this.entries.length);
    if (fromIndex === end) {
      for (const e of ents) this.entries.push(e);
    } else if (fromIndex <= this.offset) {
      // The log is replaced from fromIndex on; storage entries >= fromIndex get overwritten
      // when the application persists these.
      this.offset = fromIndex;
      this.entries = ents.slice();
    } else {
      this.entries = this.slice(this.offset, fromIndex).concat(ents);
    }
    if (this.offsetInProgress > fromIndex) this.offsetInProgress = fromIndex;
  }

  slice(lo: bigint, hi: bigint): Entry[] {
    const upper = this.offset + BigInt(this.entries.length);
    if (lo > hi || lo < this.offset || hi > upper) {
      throw new ErrInvariant(`unstable.slice[${lo},${hi}) out of bound [${this.offset},${upper}]`);
    }
    return this.entries.slice(Number(lo - this.offset), Number(hi - this.offset));
  }
}
