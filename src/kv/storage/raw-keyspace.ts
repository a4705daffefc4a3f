import type { CfCursor, CfName } from "../engine/index.js";
import {
  CF_DEFAULT,
  CF_LOCK,
  CF_WRITE,
  RAW_CF_DEFAULT,
  RAW_CF_LOCK,
  RAW_CF_TTL_DEFAULT,
  RAW_CF_TTL_LOCK,
  RAW_CF_TTL_WRITE,
  RAW_CF_WRITE,
} from "../engine/index.js";
import type { Context } from "../../proto/kvrpcpb.js";
import type { Runtime } from "../../util/runtime.js";
import { realRuntime } from "../../util/runtime.js";
import { decodeExpiry, encodeExpiry, liveValue } from "../raftstore/conditional-write.js";
import { InvalidArgumentError } from "./errors.js";
import type { ConditionalOutcome, Modify, Storage, StorageReader } from "./storage.js";

const RAW_CFS = new Map<CfName, CfName>([
  [CF_DEFAULT, RAW_CF_DEFAULT],
  [CF_LOCK, RAW_CF_LOCK],
  [CF_WRITE, RAW_CF_WRITE],
]);

const TTL_CFS = new Map<CfName, CfName>([
  [CF_DEFAULT, RAW_CF_TTL_DEFAULT],
  [CF_LOCK, RAW_CF_TTL_LOCK],
  [CF_WRITE, RAW_CF_TTL_WRITE],
]);

function clientCfError(cf: CfName): InvalidArgumentError {
  return new InvalidArgumentError(
    `column family ${JSON.stringify(cf)} is not a client CF (expected one of ${[...RAW_CFS.keys()].join(", ")})`,
  );
}

/** The engine CF where the raw API keeps what clients call `cf` (engine/cf.ts). */
export function rawCf(cf: CfName): CfName {
  const raw = RAW_CFS.get(cf);
  if (!raw) throw clientCfError(cf);
  return raw;
}

/** The engine CF holding the expiries of the raw keys of client CF `cf`. */
export function rawTtlCf(cf: CfName): CfName {
  const ttl = TTL_CFS.get(cf);
  if (!ttl) throw clientCfError(cf);
  return ttl;
}

/** About a century: far beyond any use, and far from overflowing an expiry in milliseconds. */
export const MAX_TTL_SECONDS = 100n * 365n * 86_400n;

/**
 * A raw delete range removes at most this many stored keys per raft entry (RawKeyspace.deleteRange):
 * apply lists an entry's keys in memory before it deletes them.
 */
export const MAX_RANGE_DELETE_KEYS = 10_000;
/** ...and keys of at most this many bytes together (keys may be 8 KiB each). */
export const MAX_RANGE_DELETE_KEY_BYTES = 4 << 20;

/** A raw write: a put may carry a ttl in seconds (0 or absent: never expires). */
export type RawModify =
  | { kind: "put"; cf: CfName; key: Buffer; value: Buffer; ttlSeconds?: bigint }
  | { kind: "delete"; cf: CfName; key: Buffer }
  | { kind: "deleteRange"; cf: CfName; start: Buffer; end: Buffer };

/** A raw compare-and-swap: `expected` undefined means "the key must not exist"; `value` undefined deletes. */
export interface RawCompareAndSwap {
  cf: CfName;
  key: Buffer;
  expected: Buffer | undefined;
  value: Buffer | undefined;
  ttlSeconds?: bigint;
}

/** What raw scans read: the engine cursor's reading surface (CfCursor has it). */
export interface RawCursor {
  seek(key: Uint8Array): Promise<void>;
  next(): Promise<void>;
  readonly valid: boolean;
  readonly key: Buffer;
  readonly value: Buffer;
  /** When the current pair expires (ms since the epoch); undefined: never. */
  readonly expiresAtMs: number | undefined;
  close(): Promise<void>;
}

/**
 * The raw API's view of a Storage: the same keys and CF names as the client's, kept in the raw
 * CFs, so raw data and Percolator's data never share a key space (and a raw key is never routed
 * as an encoded MVCC key: src/kv/raftstore/keyspace.ts). Transactional commands use the Storage
 * itself: their CFs are TinyKV's.
 *
 * TTL lives here so every raw write and read path gets it: a put with a ttl stores its expiry
 * (absolute ms, from this node's clock when it proposes, so every replica stores the same one)
 * under the key in the CF's TTL CF; a put without one deletes any old expiry; every read treats
 * a key whose expiry has passed as absent. Values are stored exactly as before.
 */
export function rawKeyspace(storage: Storage, clock: Pick<Runtime, "now"> = realRuntime): RawKeyspace {
  return new RawKeyspace(storage, clock);
}

export class RawKeyspace {
  constructor(
    private readonly inner: Storage,
    private readonly clock: Pick<Runtime, "now">,
  ) {}

  start(): Promise<void> {
    return this.inner.start();
  }

  stop(): Promise<void> {
    return this.inner.stop();
  }

  write(ctx: Context | undefined, batch: RawModify[]): Promise<void> {
    const now = this.clock.now();
    return this.inner.write(
      ctx,
      batch.flatMap((m) => toEngineWrites(m, now)),
    );
  }

  /**
   * Deletes the keys of [start, end) (empty end = no end) in raft entries of at most `chunkKeys`
   * stored keys each, in key order: one entry's apply lists every key it deletes, so one entry
   * over millions of keys would hold them all in memory and stall its region's apply. Each chunk
   * ends at the first key past it, read just before; a key put into a chunk meanwhile is still
   * deleted (apply lists the keys again). Not atomic: a failure midway leaves a prefix deleted,
   * and retrying is safe.
   */
  async deleteRange(
    ctx: Context | undefined,
    cf: CfName,
    start: Buffer,
    end: Buffer,
    chunkKeys = MAX_RANGE_DELETE_KEYS,
  ): Promise<void> {
    let from = start;
    for (;;) {
      const next = await this.chunkEnd(ctx, rawCf(cf), from, end, chunkKeys);
      await this.write(ctx, [{ kind: "deleteRange", cf, start: from, end: next ?? end }]);
      if (next === undefined) return;
      from = next; // the chunkKeys+1-th key from `from`: strictly past it, so every round advances
    }
  }

  /**
   * Where a chunk from `from` ends: the stored key after `count` keys, or after the keys reaching
   * MAX_RANGE_DELETE_KEY_BYTES, in [from, end); undefined if the range ends first.
   */
  private async chunkEnd(
    ctx: Context | undefined,
    cf: CfName,
    from: Buffer,
    end: Buffer,
    count: number,
  ): Promise<Buffer | undefined> {
    const reader = await this.inner.reader(ctx);
    const cursor = reader.iterCF(cf);
    try {
      await cursor.seek(from);
      let bytes = 0;
      for (let seen = 0; cursor.valid && (end.length === 0 || Buffer.compare(cursor.key, end) < 0); seen++) {
        if (seen === count || bytes >= MAX_RANGE_DELETE_KEY_BYTES) return cursor.key;
        bytes += cursor.key.length;
        await cursor.next();
      }
      return undefined;
    } finally {
      await cursor.close();
      await reader.close();
    }
  }

  async reader(ctx: Context | undefined): Promise<RawReader> {
    // Refused here, for every storage: a standalone store has no replicas to be stale on, but a
    // raw stale read must not mean one thing there and another on a cluster.
    if (ctx?.staleRead)
      throw new InvalidArgumentError(
        "context.stale_read is for KvGet and KvScan: raw keys have none (use replica_read)",
      );
    const inner = await this.inner.reader(ctx);
    // Expiry is judged at the moment of the read, after the snapshot is taken.
    return new RawReader(inner, this.clock.now());
  }

  /** Compares and writes in one step (one raft entry), an expired value counting as absent. */
  compareAndSwap(ctx: Context | undefined, cas: RawCompareAndSwap): Promise<ConditionalOutcome> {
    const now = this.clock.now();
    const write: RawModify =
      cas.value === undefined
        ? { kind: "delete", cf: cas.cf, key: cas.key }
        : { kind: "put", cf: cas.cf, key: cas.key, value: cas.value, ttlSeconds: cas.ttlSeconds };
    return this.conditional(ctx, {
      cf: rawCf(cas.cf),
      key: cas.key,
      expected: cas.expected,
      expiry: { cf: rawTtlCf(cas.cf), nowMs: now },
      writes: toEngineWrites(write, now),
    });
  }

  /**
   * Removes an expired key if its expiry is still `expiry` (what the sweep read): a put since
   * then changed or cleared the expiry, and is never undone. True when it removed the key.
   */
  async removeExpired(ctx: Context | undefined, cf: CfName, key: Buffer, expiry: Buffer): Promise<boolean> {
    const outcome = await this.conditional(ctx, {
      cf: rawTtlCf(cf),
      key,
      expected: expiry,
      writes: toEngineWrites({ kind: "delete", cf, key }, 0),
    });
    return outcome.succeed;
  }

  private conditional(ctx: Context | undefined, cw: Parameters<NonNullable<Storage["conditionalWrite"]>>[1]) {
    if (!this.inner.conditionalWrite) throw new InvalidArgumentError("this storage cannot compare and swap");
    return this.inner.conditionalWrite(ctx, cw);
  }
}

function toEngineWrites(m: RawModify, nowMs: number): Modify[] {
  const ttlCf = rawTtlCf(m.cf);
  if (m.kind === "deleteRange") {
    return [
      { kind: "deleteRange", cf: rawCf(m.cf), start: m.start, end: m.end },
      { kind: "deleteRange", cf: ttlCf, start: m.start, end: m.end },
    ];
  }
  if (m.kind === "delete") {
    return [
      { kind: "delete", cf: rawCf(m.cf), key: m.key },
      { kind: "delete", cf: ttlCf, key: m.key },
    ];
  }
  const ttl = m.ttlSeconds ?? 0n;
  if (ttl < 0n || ttl > MAX_TTL_SECONDS)
    throw new InvalidArgumentError(`ttl ${ttl} s is out of range (0 to ${MAX_TTL_SECONDS} s)`);
  const expiry: Modify =
    ttl === 0n
      ? { kind: "delete", cf: ttlCf, key: m.key }
      : { kind: "put", cf: ttlCf, key: m.key, value: encodeExpiry(nowMs + Number(ttl) * 1000) };
  return [{ kind: "put", cf: rawCf(m.cf), key: m.key, value: m.value }, expiry];
}

/** A raw read at one moment: values whose expiry is at or before `nowMs` are not there. */
export class RawReader {
  constructor(
    private readonly inner: StorageReader,
    readonly nowMs: number,
  ) {}

  async getCF(cf: CfName, key: Uint8Array): Promise<Buffer | undefined> {
    const value = await this.inner.getCF(rawCf(cf), key);
    if (value === undefined) return undefined;
    return liveValue(value, await this.inner.getCF(rawTtlCf(cf), key), this.nowMs);
  }

  /** The live value and its expiry (ms since the epoch; undefined: never expires). */
  async getWithExpiry(cf: CfName, key: Uint8Array): Promise<{ value: Buffer; expiresAtMs?: number } | undefined> {
    const value = await this.inner.getCF(rawCf(cf), key);
    if (value === undefined) return undefined;
    const expiry = await this.inner.getCF(rawTtlCf(cf), key);
    if (liveValue(value, expiry, this.nowMs) === undefined) return undefined;
    return { value, expiresAtMs: decodeExpiry(expiry) };
  }

  /** See CfCursor: with `reverse`, seek(k) lands on the last key below k and next() steps down. */
  iterCF(cf: CfName, opts: { reverse?: boolean } = {}): RawCursor {
    return new LiveCursor(
      this.inner.iterCF(rawCf(cf), opts),
      this.inner.iterCF(rawTtlCf(cf), opts),
      this.nowMs,
      opts.reverse === true,
    );
  }

  /** The stored expiries of CF `cf` (the TTL sweep walks them): keys are raw keys, values 8-byte expiries. */
  iterExpiries(cf: CfName): CfCursor {
    return this.inner.iterCF(rawTtlCf(cf));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * The values of a raw CF without the expired ones: the expiry cursor walks alongside (in the same
 * direction), never behind the value cursor, so a scan costs one extra seek plus one step per key that has a ttl.
 */
class LiveCursor implements RawCursor {
  constructor(
    private readonly values: CfCursor,
    private readonly expiries: CfCursor,
    private readonly nowMs: number,
    /** Both cursors step down: the expiry cursor then never goes below the value cursor. */
    private readonly reverse: boolean,
  ) {}

  async seek(key: Uint8Array): Promise<void> {
    await this.values.seek(key);
    await this.expiries.seek(key);
    await this.skipExpired();
  }

  async next(): Promise<void> {
    await this.values.next();
    await this.skipExpired();
  }

  private async skipExpired(): Promise<void> {
    while (this.values.valid) {
      const key = this.values.key;
      const direction = this.reverse ? -1 : 1;
      while (this.expiries.valid && Buffer.compare(this.expiries.key, key) * direction < 0) await this.expiries.next();
      const expired =
        this.expiries.valid &&
        this.expiries.key.equals(key) &&
        liveValue(this.values.value, this.expiries.value, this.nowMs) === undefined;
      if (!expired) return;
      await this.values.next();
    }
  }

  get valid(): boolean {
    return this.values.valid;
  }

  get key(): Buffer {
    return this.values.key;
  }

  get value(): Buffer {
    return this.values.value;
  }

  get expiresAtMs(): number | undefined {
    // skipExpired left the expiry cursor at the value's key or past it.
    if (!this.values.valid || !this.expiries.valid || !this.expiries.key.equals(this.values.key)) return undefined;
    return decodeExpiry(this.expiries.value);
  }

  async close(): Promise<void> {
    await Promise.all([this.values.close(), this.expiries.close()]);
  }
}
