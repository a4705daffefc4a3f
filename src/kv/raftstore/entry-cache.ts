import type { Entry } from "../../raft/eraftpb.js";

/** What an entry counts for in size limits (raft's own estimate: data plus fixed framing). */
export function entryBytes(e: Entry): number {
  return e.data.length + 24;
}

/**
 * One peer's live raft log in memory: the term and size of every entry (a few bytes each, so
 * raft's synchronous term() never waits for the disk) and the entries themselves only for the
 * newest part, bounded in bytes by the caller's evictions. The cached entries are always a
 * suffix of the log: [cacheFirst, lastIndex].
 */
export class RaftLogCache {
  /** Index of terms[0] and sizes[0]. */
  private first: bigint;
  private terms: bigint[] = [];
  private sizes: number[] = [];
  private cached: Entry[] = [];
  /** Bytes of every live entry, cached or not. */
  logBytes = 0;
  cachedBytes = 0;

  constructor(firstIndex: bigint) {
    this.first = firstIndex;
  }

  get lastIndex(): bigint {
    return this.first + BigInt(this.terms.length) - 1n;
  }

  get cacheFirst(): bigint {
    return this.lastIndex + 1n - BigInt(this.cached.length);
  }

  /** Term of a live entry; the caller checks the bounds. */
  term(i: bigint): bigint {
    return this.terms[Number(i - this.first)]!;
  }

  /** Cached entries [lo, hi) (lo >= cacheFirst), at least one, stopping before maxSize bytes. */
  slice(lo: bigint, hi: bigint, maxSize: number | undefined): Entry[] {
    const base = this.cacheFirst;
    const out: Entry[] = [];
    let size = 0;
    for (let i = Number(lo - base); i < Number(hi - base); i++) {
      const e = this.cached[i]!;
      size += entryBytes(e);
      if (out.length > 0 && maxSize !== undefined && size > maxSize) break;
      out.push(e);
    }
    return out;
  }

  /** Appends entries from entries[0].index on, replacing whatever the log held from there. */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const at = entries[0]!.index;
    this.truncateFrom(at);
    for (const e of entries) {
      const size = entryBytes(e);
      this.terms.push(e.term);
      this.sizes.push(size);
      this.cached.push(e);
      this.logBytes += size;
      this.cachedBytes += size;
    }
  }

  /** Records an entry read back on restart that stays on disk only (its term and size). */
  appendUncached(e: Entry): void {
    if (this.cached.length > 0) throw new Error(`entry ${e.index}: uncached entries must precede cached ones`);
    const size = entryBytes(e);
    this.terms.push(e.term);
    this.sizes.push(size);
    this.logBytes += size;
  }

  private truncateFrom(at: bigint): void {
    const keep = Math.max(0, Number(at - this.first));
    if (keep >= this.terms.length) return;
    const cacheFirst = this.cacheFirst;
    for (let i = keep; i < this.sizes.length; i++) this.logBytes -= this.sizes[i]!;
    this.terms.length = keep;
    this.sizes.length = keep;
    const keepCached = Math.max(0, Number(at - cacheFirst));
    for (let i = keepCached; i < this.cached.length; i++) this.cachedBytes -= entryBytes(this.cached[i]!);
    this.cached.length = keepCached;
  }

  /** Forgets entries up to and including `index` (compacted). */
  compactTo(index: bigint): void {
    const n = Math.min(this.terms.length, Math.max(0, Number(index - this.first + 1n)));
    if (n === 0) return;
    const uncached = this.terms.length - this.cached.length;
    for (let i = 0; i < n; i++) this.logBytes -= this.sizes[i]!;
    this.terms.splice(0, n);
    this.sizes.splice(0, n);
    const dropCached = Math.max(0, n - uncached);
    for (let i = 0; i < dropCached; i++) this.cachedBytes -= entryBytes(this.cached[i]!);
    this.cached.splice(0, dropCached);
    this.first += BigInt(n);
  }

  /** Drops the oldest cached entries at or below `upTo` while the cache is over `limitBytes`. */
  evict(upTo: bigint, limitBytes: number): void {
    let n = 0;
    let bytes = this.cachedBytes;
    const base = this.cacheFirst;
    while (n < this.cached.length && bytes > limitBytes && base + BigInt(n) <= upTo) {
      bytes -= entryBytes(this.cached[n]!);
      n++;
    }
    if (n === 0) return;
    this.cached.splice(0, n);
    this.cachedBytes = bytes;
  }

  /** Bytes of the live entries [lo, hi). */
  bytesBetween(lo: bigint, hi: bigint): number {
    let bytes = 0;
    const end = Math.min(this.sizes.length, Number(hi - this.first));
    for (let i = Math.max(0, Number(lo - this.first)); i < end; i++) bytes += this.sizes[i]!;
    return bytes;
  }
}
