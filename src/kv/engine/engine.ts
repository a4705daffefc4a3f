import type { AbstractLevel } from "abstract-level";
import { ClassicLevel } from "classic-level";
import type { CfName } from "./cf.js";
import { cfKey, cfPrefix, cfRange } from "./cf.js";
import { TinyKvError } from "../../util/errors.js";

/**
 * Any abstract-level store with buffer keys and values and explicit snapshots: classic-level
 * (LevelDB on disk) in production; the simulated disk's SimDb (sim-db.ts) answers the part of
 * this interface the engine uses.
 */
export type Db = AbstractLevel<Buffer | Uint8Array | string, Buffer, Buffer>;
// The explicit snapshot token; its type is not re-exported by name.
type DbSnapshot = ReturnType<Db["snapshot"]>;

/**
 * The write half of a batch: classic-level's chained batch as it is, or the simulated disk's
 * batch, which records the operations for its durability model.
 */
export interface BatchWriter {
  put(key: Buffer, value: Buffer): unknown;
  del(key: Buffer): unknown;
  write(options: { sync: boolean }): Promise<void>;
  close(): Promise<void>;
}

export class EngineOpenError extends TinyKvError {
  constructor(
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot open data dir ${path}: ${reason}`, options);
    this.name = "EngineOpenError";
  }
}

/**
 * One LevelDB instance with column families as key prefixes. A store has two:
 * `<path>/kv` (user data + apply/region state) and `<path>/raft` (raft log + raft state).
 * `open` gives the real one; `SimDisk.open` an in-memory one with LevelDB's durability model.
 */
/**
 * A key after every key the store writes (CF keys start with a lowercase letter, meta keys with
 * 0x01), present in every engine. classic-level answers a seek that finds no key at or after its
 * target by walking to the first and then the last key of the whole database; under a snapshot
 * with newer writes at the tail, LevelDB steps back over every one of them, so each seek past the
 * end of the last CF (any new key's write-CF lookup in a prewrite) cost milliseconds and a large
 * transaction went quadratic. With this key present such a seek stops here, outside every range.
 */
export const ENGINE_END_KEY = Buffer.from([0xff]);

export class Engine {
  protected constructor(
    readonly path: string,
    readonly db: Db,
  ) {}

  static async open(path: string): Promise<Engine> {
    const db: Db = new ClassicLevel<Buffer, Buffer>(path, { keyEncoding: "buffer", valueEncoding: "buffer" });
    try {
      await db.open();
    } catch (err) {
      throw new EngineOpenError(path, describeOpenFailure(err), { cause: err });
    }
    if ((await db.get(ENGINE_END_KEY)) === undefined)
      await new WriteBatch(db.batch()).putMeta(ENGINE_END_KEY, Buffer.alloc(0)).write(true);
    return new Engine(path, db);
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  get(cf: CfName, key: Uint8Array): Promise<Buffer | undefined> {
    return this.db.get(cfKey(cf, key));
  }

  getMeta(key: Buffer): Promise<Buffer | undefined> {
    return this.db.get(key);
  }

  newBatch(): WriteBatch {
    return new WriteBatch(this.db.batch());
  }

  /** A point-in-time view: every read through it ignores later writes. Close it when done. */
  snapshot(): EngineSnapshot {
    return new EngineSnapshot(this.db, this.db.snapshot());
  }
}

function describeOpenFailure(err: unknown): string {
  const e = err as { code?: string; cause?: { message?: string } };
  const detail = e.cause?.message ?? (err instanceof Error ? err.message : String(err));
  if (/lock/i.test(detail)) return `it is locked by another process (${detail})`;
  return detail;
}

/**
 * An atomic batch of puts and deletes over CFs and meta keys. Uses classic-level's chained
 * batch, which is 2-3x faster than the array form (measured on this stack).
 */
export class WriteBatch {
  private count = 0;
  private bytes = 0;

  constructor(private readonly batch: BatchWriter) {}

  put(cf: CfName, key: Uint8Array, value: Uint8Array): this {
    return this.putMeta(cfKey(cf, key), Buffer.isBuffer(value) ? value : Buffer.from(value));
  }

  delete(cf: CfName, key: Uint8Array): this {
    return this.deleteMeta(cfKey(cf, key));
  }

  putMeta(key: Buffer, value: Buffer): this {
    this.batch.put(key, value);
    this.count++;
    this.bytes += key.length + value.length;
    return this;
  }

  deleteMeta(key: Buffer): this {
    this.batch.del(key);
    this.count++;
    this.bytes += key.length;
    return this;
  }

  get length(): number {
    return this.count;
  }

  get size(): number {
    return this.bytes;
  }

  /** Writes everything atomically; `sync` waits for fsync. An empty batch is closed without I/O. */
  async write(sync: boolean): Promise<void> {
    if (this.count === 0) {
      await this.batch.close();
      return;
    }
    await this.batch.write({ sync });
  }
}

/** The part of classic-level's iterator that the cursor uses, with buffer keys and values. */
interface BufferIterator {
  seek(target: Buffer): void;
  next(): Promise<[Buffer, Buffer] | undefined>;
  close(): Promise<void>;
}

export interface EngineEntry {
  key: Buffer;
  value: Buffer;
}

/**
 * A cursor over one CF within [lower, upper), reading from a snapshot. Keys come back without the
 * CF prefix. A `reverse` cursor walks the range downward, largest key first.
 */
export class CfCursor {
  private it: BufferIterator;
  private current: EngineEntry | undefined;
  private readonly prefixLen: number;

  constructor(
    db: Db,
    snapshot: DbSnapshot,
    readonly cf: CfName,
    private readonly lower: Uint8Array,
    upper: Uint8Array,
    /** When given, keys it refuses are skipped (a region whose keys are not one contiguous range). */
    private readonly accept?: (key: Buffer) => boolean,
    readonly reverse = false,
  ) {
    const range = cfRange(cf, lower, upper);
    this.prefixLen = cfPrefix(cf).length;
    this.upper = upper;
    this.it = db.iterator({ gte: range.gte, lt: range.lt, snapshot, reverse }) as unknown as BufferIterator;
  }

  private readonly upper: Uint8Array;

  /**
   * Positions at the first key >= `key` (and within the bounds). A reverse cursor positions at
   * the last key < `key` instead (an empty `key`: the last key of the range), as a reverse scan's
   * exclusive upper bound.
   */
  async seek(key: Uint8Array): Promise<void> {
    if (this.reverse) return this.seekBelow(key);
    // LevelDB's seek ignores the iterator's lower bound, so clamp it here.
    this.it.seek(cfKey(this.cf, Buffer.compare(key, this.lower) < 0 ? this.lower : key));
    await this.next();
  }

  private async seekBelow(key: Uint8Array): Promise<void> {
    const belowUpper = this.upper.length === 0 || Buffer.compare(key, this.upper) < 0;
    // A fresh reverse iterator starts at the range's last key: seek only when `key` is inside.
    if (key.length > 0 && belowUpper) {
      if (Buffer.compare(key, this.lower) <= 0) {
        this.current = undefined;
        return;
      }
      // A reverse seek lands on the last key <= target; the bound is exclusive, so step past it.
      this.it.seek(cfKey(this.cf, key));
      await this.next();
      if (this.current && Buffer.compare(this.current.key, key) === 0) await this.next();
      return;
    }
    await this.next();
  }

  /** Moves to the next entry; `valid` turns false at the end. */
  async next(): Promise<void> {
    for (;;) {
      const kv = await this.it.next();
      this.current = kv === undefined ? undefined : { key: kv[0].subarray(this.prefixLen), value: kv[1] };
      if (!this.current || !this.accept || this.accept(this.current.key)) return;
    }
  }

  get valid(): boolean {
    return this.current !== undefined;
  }

  get key(): Buffer {
    if (!this.current) throw new Error(`cursor on CF ${this.cf} is not positioned`);
    return this.current.key;
  }

  get value(): Buffer {
    if (!this.current) throw new Error(`cursor on CF ${this.cf} is not positioned`);
    return this.current.value;
  }

  /** Reads up to `limit` entries from the current position on. */
  async take(limit: number): Promise<EngineEntry[]> {
    const out: EngineEntry[] = [];
    while (this.valid && out.length < limit) {
      out.push(this.current!);
      await this.next();
    }
    return out;
  }

  async close(): Promise<void> {
    await this.it.close();
  }
}

export class EngineSnapshot {
  private closed = false;
  private refs = 1;

  /**
   * Another owner of this snapshot: every owner calls close(), the last one releases it. The
   * reads that one ReadIndex round releases share one snapshot this way.
   */
  share(): this {
    if (this.closed) throw new Error("cannot share a closed engine snapshot");
    this.refs++;
    return this;
  }

  constructor(
    private readonly db: Db,
    private readonly snap: DbSnapshot,
  ) {}

  get(cf: CfName, key: Uint8Array): Promise<Buffer | undefined> {
    return this.db.get(cfKey(cf, key), { snapshot: this.snap });
  }

  getMeta(key: Buffer): Promise<Buffer | undefined> {
    return this.db.get(key, { snapshot: this.snap });
  }

  /** A cursor over the user keys [lower, upper) of a CF; empty upper = to the end of the CF. Not yet positioned: call seek(). */
  cursor(
    cf: CfName,
    lower: Uint8Array = Buffer.alloc(0),
    upper: Uint8Array = Buffer.alloc(0),
    accept?: (key: Buffer) => boolean,
    reverse = false,
  ): CfCursor {
    return new CfCursor(this.db, this.snap, cf, lower, upper, accept, reverse);
  }

  /** The user keys of a CF in [lower, upper) (empty upper = to the end), in order, without reading their values. */
  async *keys(cf: CfName, lower: Uint8Array, upper: Uint8Array): AsyncGenerator<Buffer> {
    const range = cfRange(cf, lower, upper);
    const prefixLen = cfPrefix(cf).length;
    // An iterator without values (classic-level then reads none; the simulated disk's holds them anyway).
    for await (const [key] of this.db.iterator({ gte: range.gte, lt: range.lt, snapshot: this.snap, values: false }))
      yield key.subarray(prefixLen);
  }

  /** Iterates raw engine keys in [gte, lt) (meta keys), from the snapshot. */
  async *rawRange(gte: Buffer, lt: Buffer): AsyncGenerator<EngineEntry> {
    for await (const [key, value] of this.db.iterator({ gte, lt, snapshot: this.snap })) yield { key, value };
  }

  async close(): Promise<void> {
    if (this.closed || --this.refs > 0) return;
    this.closed = true;
    await this.snap.close();
  }
}
