import { TinyKvError } from "../../util/errors.js";

/**
 * The simulated disk's key-value store: a sorted array of keys, each with its versions (one per
 * batch that wrote it), and snapshots as batch sequence numbers, as LevelDB's own snapshots are.
 * It answers the part of abstract-level's interface that Engine, its snapshots and cursors use
 * (get, batch, snapshot, iterator with seek, keys, close), without abstract-level's option
 * parsing, encodings and deferrals: the simulator writes and reads it on every event, and
 * memory-level's per-call machinery was a tenth of a run's time.
 *
 * A read under a snapshot sees the newest version at or below the snapshot's sequence number. A
 * write drops the versions no open snapshot can see any more, and a deleted key leaves the array
 * once no snapshot sees it. Iterators hold a snapshot and find their next key by binary search
 * after the last one they returned, so writes (which splice the array) never move them; while no
 * row came or went since, the next row is simply the one after.
 */

type Key = Buffer | Uint8Array | string;

export type SimDbOp = { type: "put"; key: Buffer; value: Buffer } | { type: "del"; key: Buffer };

interface Version {
  seq: number;
  /** undefined: deleted by the batch `seq`. */
  value: Buffer | undefined;
}

interface Row {
  key: Buffer;
  /** Oldest first. */
  versions: Version[];
}

/** A read, write or iteration of a closed store (a crashed engine): what abstract-level rejects with. */
export class SimDbClosedError extends TinyKvError {
  readonly code = "LEVEL_DATABASE_NOT_OPEN";

  constructor(what: string) {
    super(`${what}: the simulated store is closed`);
    this.name = "SimDbClosedError";
  }
}

export class SimDbSnapshot {
  closed = false;

  constructor(
    private readonly db: SimDb,
    readonly seq: number,
  ) {}

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.release(this.seq);
  }
}

export interface SimDbRange {
  gte?: Key;
  lt?: Key;
  limit?: number;
  snapshot?: SimDbSnapshot;
}

/**
 * Byte order, as Buffer.compare, in JS: for the simulator's short keys with long shared prefixes
 * this is a few times cheaper than Buffer.compare's call into C++ (the store's hottest loop).
 */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function asBuffer(key: Key): Buffer {
  return Buffer.isBuffer(key) ? key : typeof key === "string" ? Buffer.from(key, "utf8") : Buffer.from(key);
}

export class SimDb {
  private readonly rows: Row[] = [];
  private seq = 0;
  /** Open snapshots (iterators' included) per sequence number. */
  private readonly pins = new Map<number, number>();
  /** The smallest pinned sequence number, or undefined when it must be recomputed (or none is pinned). */
  private oldestPin: number | undefined;
  private open = true;
  /** @internal Bumped whenever a row is inserted or removed: an iterator's saved index is good while this holds. */
  layout = 0;

  get isOpen(): boolean {
    return this.open;
  }

  async close(): Promise<void> {
    this.open = false;
  }

  /** A point-in-time view; close it when done (an open one keeps old versions alive). */
  snapshot(): SimDbSnapshot {
    this.assertOpen("snapshot");
    return this.pin();
  }

  get(key: Key, options?: { snapshot?: SimDbSnapshot }): Promise<Buffer | undefined> {
    if (!this.open) return Promise.reject(new SimDbClosedError("get"));
    const snap = options?.snapshot;
    if (snap?.closed) return Promise.reject(new SimDbClosedError("get from a closed snapshot"));
    const k = asBuffer(key);
    const i = this.lowerBound(k);
    const row = this.rows[i];
    if (row === undefined || compareBytes(row.key, k) !== 0) return Promise.resolve(undefined);
    return Promise.resolve(visible(row, snap?.seq ?? this.seq));
  }

  /** Applies the operations atomically (in one synchronous step) as one sequence number. */
  batch(ops: readonly SimDbOp[]): Promise<void> {
    if (!this.open) return Promise.reject(new SimDbClosedError("batch"));
    this.applyBatch(ops);
    return Promise.resolve();
  }

  /** @internal The batch without the promise (recovery replays many). */
  applyBatch(ops: readonly SimDbOp[]): void {
    const seq = ++this.seq;
    const oldest = this.oldestVisible();
    for (const op of ops) {
      const i = this.lowerBound(op.key);
      const row = this.rows[i];
      const value = op.type === "put" ? op.value : undefined;
      if (row === undefined || compareBytes(row.key, op.key) !== 0) {
        if (value !== undefined) {
          this.rows.splice(i, 0, { key: op.key, versions: [{ seq, value }] });
          this.layout++;
        }
        continue;
      }
      row.versions.push({ seq, value });
      prune(row, oldest);
      const only = row.versions.length === 1 ? row.versions[0]! : undefined;
      if (only && only.value === undefined && only.seq <= oldest) {
        this.rows.splice(i, 1);
        this.layout++;
      }
    }
  }

  iterator(range: SimDbRange = {}): SimDbIterator {
    this.assertOpen("iterator");
    return new SimDbIterator(this, range);
  }

  keys(range: SimDbRange = {}): { all(): Promise<Buffer[]> } {
    const it = this.iterator(range);
    return {
      all: async () => {
        const out: Buffer[] = [];
        try {
          for (let e = await it.next(); e !== undefined; e = await it.next()) out.push(e[0]);
        } finally {
          await it.close();
        }
        return out;
      },
    };
  }

  /** @internal A snapshot at `seq` (by default the current sequence number; else one still pinned). */
  pin(seq = this.seq): SimDbSnapshot {
    this.pins.set(seq, (this.pins.get(seq) ?? 0) + 1);
    // The clock only moves forward: a new pin is the oldest only when it is the only one.
    if (this.pins.size === 1) this.oldestPin = seq;
    return new SimDbSnapshot(this, seq);
  }

  /** @internal */
  release(seq: number): void {
    const n = (this.pins.get(seq) ?? 0) - 1;
    if (n > 0) {
      this.pins.set(seq, n);
      return;
    }
    this.pins.delete(seq);
    if (seq === this.oldestPin) this.oldestPin = undefined;
  }

  /** @internal The index of the first row at (if `inclusive`) or after `key`. */
  indexFrom(key: Buffer, inclusive: boolean): number {
    const i = this.lowerBound(key);
    const row = this.rows[i];
    return !inclusive && row !== undefined && compareBytes(row.key, key) === 0 ? i + 1 : i;
  }

  /** @internal The index of the first row from `i` on, before `lt`, that a reader at `seq` sees (-1: none). */
  visibleFrom(i: number, lt: Buffer | undefined, seq: number): number {
    this.assertOpen("iterator next");
    for (; i < this.rows.length; i++) {
      const row = this.rows[i]!;
      if (lt !== undefined && compareBytes(row.key, lt) >= 0) return -1;
      if (visible(row, seq) !== undefined) return i;
    }
    return -1;
  }

  /** @internal Row `i`'s key and the value a reader at `seq` sees (visibleFrom found it). */
  entryAt(i: number, seq: number): [Buffer, Buffer] {
    const row = this.rows[i]!;
    return [row.key, visible(row, seq)!];
  }

  /** The versions older than this are seen by no open snapshot (beyond the newest of them). */
  private oldestVisible(): number {
    if (this.pins.size === 0) return this.seq;
    if (this.oldestPin === undefined) {
      let oldest = Number.POSITIVE_INFINITY;
      for (const seq of this.pins.keys()) if (seq < oldest) oldest = seq;
      this.oldestPin = oldest;
    }
    return this.oldestPin;
  }

  /** The index of the first row whose key is >= `key`. */
  private lowerBound(key: Buffer): number {
    let lo = 0;
    let hi = this.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(this.rows[mid]!.key, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private assertOpen(what: string): void {
    if (!this.open) throw new SimDbClosedError(what);
  }
}

/** The value of `row` a reader at `seq` sees (undefined: none, or deleted). */
function visible(row: Row, seq: number): Buffer | undefined {
  const vs = row.versions;
  for (let i = vs.length - 1; i >= 0; i--) if (vs[i]!.seq <= seq) return vs[i]!.value;
  return undefined;
}

/** Drops the versions before the newest one at or below `oldest`: nobody can read them. */
function prune(row: Row, oldest: number): void {
  const vs = row.versions;
  let keep = 0;
  for (let i = vs.length - 1; i >= 0; i--)
    if (vs[i]!.seq <= oldest) {
      keep = i;
      break;
    }
  if (keep > 0) vs.splice(0, keep);
}

/** An iterator over [gte, lt) at a snapshot (the given one's point, or now): as abstract-level's, forward only. */
export class SimDbIterator {
  /** Its own pin (of the given snapshot's point, if any): closing that snapshot does not end the iteration, as in LevelDB. */
  private readonly snap: SimDbSnapshot;
  private readonly gte: Buffer;
  private readonly lt: Buffer | undefined;
  private position: Buffer;
  private inclusive = true;
  /** The row `position` was found at, while the store's layout is `layout`: the next one is after it, no search needed. */
  private index = -1;
  private layout = -1;
  private remaining: number;
  private closed = false;

  constructor(
    private readonly db: SimDb,
    range: SimDbRange,
  ) {
    if (range.snapshot?.closed) throw new SimDbClosedError("iterator on a closed snapshot");
    this.snap = db.pin(range.snapshot?.seq);
    this.gte = range.gte === undefined ? Buffer.alloc(0) : asBuffer(range.gte);
    this.lt = range.lt === undefined ? undefined : asBuffer(range.lt);
    this.position = this.gte;
    this.remaining = range.limit === undefined || range.limit < 0 ? Number.POSITIVE_INFINITY : range.limit;
  }

  /** Moves to the first key >= `target` (never before the range's lower bound). */
  seek(target: Key): void {
    const t = asBuffer(target);
    this.position = compareBytes(t, this.gte) < 0 ? this.gte : t;
    this.inclusive = true;
    this.index = -1;
  }

  async next(): Promise<[Buffer, Buffer] | undefined> {
    if (this.closed) throw new SimDbClosedError("next on a closed iterator");
    if (this.remaining <= 0) return undefined;
    const from =
      this.index >= 0 && this.layout === this.db.layout
        ? this.index + 1
        : this.db.indexFrom(this.position, this.inclusive);
    const i = this.db.visibleFrom(from, this.lt, this.snap.seq);
    if (i < 0) return undefined;
    const entry = this.db.entryAt(i, this.snap.seq);
    this.position = entry[0];
    this.inclusive = false;
    this.index = i;
    this.layout = this.db.layout;
    this.remaining--;
    return entry;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.snap.close();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<[Buffer, Buffer]> {
    try {
      for (let e = await this.next(); e !== undefined; e = await this.next()) yield e;
    } finally {
      await this.close();
    }
  }
}
