/**
 * Raw change records: what the raw watch (cdcpb kv_api = RawKV) replays. Apply writes, in the
 * same kv batch as the data, one record per applied raft entry that changed raw keys (a put with
 * its value and expiry, a delete, each key a DeleteRange removed, a CAS only when it swapped) or
 * that split the region. A raw write carries no timestamp, so the entry's raft index is its
 * position; the record says what the entry did, which the entry alone cannot (whether a CAS
 * swapped, which keys a range held). Records go with the raft log: a CompactLog deletes those at
 * or below its index in its own apply batch, a snapshot install and a peer destroy delete all of
 * the region's, so a feed can resume from any index the log still holds and from no other.
 *
 * A put that apply took from the entry is not copied: the record names the command that holds
 * its value (the raft log holds the entry as long as the record exists), so a raw put is not
 * stored twice while in the log. A feed replaying records reads those entries back from the raft
 * engine.
 *
 * Key: 01 02 <region id> 04 <index> (keys.ts: the region's raft-prefixed keys, suffix 04 free).
 * Value: version byte 1, then a kind byte: 1 = changes, 3 = changes with values in the entry
 * (u32 count, then each: op byte 1 put / 2 delete / 3 put whose value is in the entry, cf byte
 * 0 default / 1 lock / 2 write, u32 key length, key; a put adds u32 value length, value, u64
 * expiry ms, 0 = none; a put in the entry adds u32 request index in the entry's RaftCmdRequest,
 * u32 write index + 1 in that request's ConditionalWrite or 0 for a Put, u64 expiry ms),
 * 2 = split (u32 count, then each u32 length and a metapb.Region). Big-endian throughout.
 */
import { Region } from "../../proto/metapb.js";
import { RaftCmdRequest } from "../../proto/raft_cmdpb.js";
import { TinyKvError } from "../../util/errors.js";
import type { CfName, Engine, EngineSnapshot, WriteBatch } from "../engine/index.js";
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
import { decodeExpiry } from "./conditional-write.js";
import { rawChangeKey, rawChangeKeyRange, rawChangesSinceKey } from "./keys.js";

/** Which command of an entry holds a put's value: requests[request], or its conditional write's writes[write - 1]. */
export interface ValueInEntry {
  request: number;
  /** 0: the request is a Put; w + 1: the request's ConditionalWrite's w-th write. */
  write: number;
}

/** One raw key's change, in the client's CF names (the raw API's `default`, `lock`, `write`). */
export type RawChange =
  | { op: "put"; cf: CfName; key: Buffer; value: Buffer; expiresAtMs?: number; inEntry?: ValueInEntry }
  | { op: "delete"; cf: CfName; key: Buffer };

/** What one entry did to raw keys, or the split it applied (the regions it left: [left, right]). */
export type RawChangeRecord = { kind: "changes"; changes: RawChange[] } | { kind: "split"; regions: Region[] };

const VERSION = 1;
const KIND_CHANGES = 1;
const KIND_SPLIT = 2;
const KIND_CHANGES_IN_ENTRY = 3;
const OP_PUT = 1;
const OP_DELETE = 2;
const OP_PUT_IN_ENTRY = 3;

/** Engine CF → the client CF and whether it holds values (else the expiries). */
const RAW_CFS = new Map<string, { cf: CfName; ttl: boolean }>([
  [RAW_CF_DEFAULT, { cf: CF_DEFAULT, ttl: false }],
  [RAW_CF_LOCK, { cf: CF_LOCK, ttl: false }],
  [RAW_CF_WRITE, { cf: CF_WRITE, ttl: false }],
  [RAW_CF_TTL_DEFAULT, { cf: CF_DEFAULT, ttl: true }],
  [RAW_CF_TTL_LOCK, { cf: CF_LOCK, ttl: true }],
  [RAW_CF_TTL_WRITE, { cf: CF_WRITE, ttl: true }],
]);
const CF_CODES: CfName[] = [CF_DEFAULT, CF_LOCK, CF_WRITE];

/**
 * Collects one entry's raw changes as apply writes them (engine CFs; other CFs are ignored). The
 * raw keyspace writes a put's value first and then its expiry (or the expiry's delete), so an
 * expiry put lands on the change just made to the same key.
 */
export class RawChangeCollector {
  private changes: RawChange[] = [];
  private split: Region[] | undefined;

  /** `inEntry`: where the entry holds the value, so that the record need not copy it. */
  put(engineCf: CfName, key: Uint8Array, value: Uint8Array, inEntry?: ValueInEntry): void {
    const raw = RAW_CFS.get(engineCf);
    if (!raw) return;
    if (!raw.ttl) {
      // A value the entry holds is written by reference (finish): no copy of it is kept here.
      const change: RawChange = inEntry
        ? {
            op: "put",
            cf: raw.cf,
            key: Buffer.from(key),
            value: Buffer.from(value.buffer, value.byteOffset, value.byteLength),
            inEntry,
          }
        : { op: "put", cf: raw.cf, key: Buffer.from(key), value: Buffer.from(value) };
      this.changes.push(change);
      return;
    }
    const last = this.lastOf(raw.cf, key);
    const at = decodeExpiry(Buffer.from(value));
    if (last?.op === "put" && at !== undefined) last.expiresAtMs = at;
  }

  delete(engineCf: CfName, key: Uint8Array): void {
    const raw = RAW_CFS.get(engineCf);
    if (!raw || raw.ttl) return; // an expiry's delete goes with its key's put or delete
    this.changes.push({ op: "delete", cf: raw.cf, key: Buffer.from(key) });
  }

  /**
   * A DeleteRange's keys that held a value when it applied (delete-range.ts presentKeys), once
   * each: its list may name a key twice (stored, and put again earlier in the turn).
   */
  deleteKeys(engineCf: CfName, keys: Buffer[]): void {
    const seen = new Set<string>();
    for (const key of keys) {
      const id = key.toString("latin1");
      if (seen.has(id)) continue;
      seen.add(id);
      this.delete(engineCf, key);
    }
  }

  splitInto(regions: Region[]): void {
    this.split = regions;
  }

  /** Writes the entry's record, if it made one (and returns it), and starts afresh for the next entry. */
  finish(kvWb: WriteBatch, regionId: bigint, index: bigint): Buffer | undefined {
    const record: RawChangeRecord | undefined = this.split
      ? { kind: "split", regions: this.split }
      : this.changes.length > 0
        ? { kind: "changes", changes: this.changes }
        : undefined;
    this.changes = [];
    this.split = undefined;
    if (!record) return undefined;
    const bytes = encodeRawChangeRecord(record);
    kvWb.putMeta(rawChangeKey(regionId, index), bytes);
    return bytes;
  }

  private lastOf(cf: CfName, key: Uint8Array): RawChange | undefined {
    for (let i = this.changes.length - 1; i >= 0; i--) {
      const c = this.changes[i]!;
      if (c.cf === cf && c.key.equals(key)) return c;
    }
    return undefined;
  }
}

/**
 * Says that every entry of the region after `index` has its record (absent entries made none). A
 * store applying entries before it wrote records (an older build) has none for them, so the feed
 * serves only positions at or after this index (and the truncated one). Written with the first
 * apply batch of a region that has none, as a split creates a region, and at a snapshot install.
 */
export function writeRawChangesSince(kvWb: WriteBatch, regionId: bigint, index: bigint): void {
  const v = Buffer.alloc(8);
  v.writeBigUInt64BE(index);
  kvWb.putMeta(rawChangesSinceKey(regionId), v);
}

export function decodeRawChangesSince(stored: Buffer | undefined): bigint | undefined {
  return stored?.length === 8 ? stored.readBigUInt64BE(0) : undefined;
}

/** Deletes the region's records (from, to]: a CompactLog's share of the log it drops. */
export function deleteRawChanges(kvWb: WriteBatch, regionId: bigint, from: bigint, to: bigint): void {
  for (let i = from + 1n; i <= to; i++) kvWb.deleteMeta(rawChangeKey(regionId, i));
}

/** Deletes every record of the region and what says since when (a snapshot install, a peer destroy). */
export async function clearRawChanges(kv: Engine, kvWb: WriteBatch, regionId: bigint): Promise<void> {
  kvWb.deleteMeta(rawChangesSinceKey(regionId));
  const { gte, lt } = rawChangeKeyRange(regionId);
  const snap = kv.snapshot();
  try {
    for await (const { key } of snap.rawRange(gte, lt)) kvWb.deleteMeta(key);
  } finally {
    await snap.close();
  }
}

/** Whether decoding the record needs its entry's data (some value lies there). */
export function rawChangeRecordNeedsEntry(record: Buffer): boolean {
  return record[1] === KIND_CHANGES_IN_ENTRY;
}

/** A record refers to its raft entry and the log no longer holds it: the position is compacted. */
export class RawChangeEntryGoneError extends TinyKvError {
  constructor(
    readonly regionId: bigint,
    readonly index: bigint,
  ) {
    super(`region ${regionId}: raft entry ${index} left the log while its change record was read`);
  }
}

/**
 * The region's records with from < index <= to, in index order, from a kv snapshot; `entryData`
 * reads an entry's data back from the raft log for a record that refers to it.
 */
export async function* readRawChanges(
  snap: EngineSnapshot,
  regionId: bigint,
  from: bigint,
  to: bigint,
  entryData: (index: bigint) => Promise<Buffer | undefined>,
): AsyncGenerator<{ index: bigint; record: RawChangeRecord }> {
  if (to <= from) return;
  for await (const { key, value } of snap.rawRange(
    rawChangeKey(regionId, from + 1n),
    rawChangeKey(regionId, to + 1n),
  )) {
    const index = key.readBigUInt64BE(11);
    let data: Buffer | undefined;
    if (rawChangeRecordNeedsEntry(value)) {
      data = await entryData(index);
      if (!data) throw new RawChangeEntryGoneError(regionId, index);
    }
    yield { index, record: decodeRawChangeRecord(value, data) };
  }
}

/** Encodes a record; a put that says where its entry holds the value is written without it. */
export function encodeRawChangeRecord(record: RawChangeRecord): Buffer {
  const refers = record.kind === "changes" && record.changes.some((c) => c.op === "put" && c.inEntry);
  const kind = record.kind === "split" ? KIND_SPLIT : refers ? KIND_CHANGES_IN_ENTRY : KIND_CHANGES;
  const parts: Buffer[] = [Buffer.from([VERSION, kind])];
  const u32 = (n: number) => {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(n);
    return b;
  };
  if (record.kind === "split") {
    parts.push(u32(record.regions.length));
    for (const r of record.regions) {
      const bytes = Buffer.from(Region.encode(r).finish());
      parts.push(u32(bytes.length), bytes);
    }
    return Buffer.concat(parts);
  }
  parts.push(u32(record.changes.length));
  for (const c of record.changes) {
    const inEntry = c.op === "put" ? c.inEntry : undefined;
    const op = c.op === "delete" ? OP_DELETE : inEntry ? OP_PUT_IN_ENTRY : OP_PUT;
    parts.push(Buffer.from([op, CF_CODES.indexOf(c.cf)]), u32(c.key.length), c.key);
    if (c.op === "put") {
      const at = Buffer.alloc(8);
      at.writeBigUInt64BE(BigInt(c.expiresAtMs ?? 0));
      if (inEntry) parts.push(u32(inEntry.request), u32(inEntry.write), at);
      else parts.push(u32(c.value.length), c.value, at);
    }
  }
  return Buffer.concat(parts);
}

/** Thrown for a record that is not one this code wrote: a corrupt engine, never a peer's input. */
export class RawChangeRecordError extends TinyKvError {}

/** Decodes a record; one that refers to its entry's data needs it (rawChangeRecordNeedsEntry). */
export function decodeRawChangeRecord(buf: Buffer, entryData?: Buffer): RawChangeRecord {
  let pos = 0;
  const need = (n: number) => {
    if (pos + n > buf.length)
      throw new RawChangeRecordError(`raw change record cut short at byte ${pos} of ${buf.length}`);
  };
  const u8 = () => {
    need(1);
    return buf[pos++]!;
  };
  const u32 = () => {
    need(4);
    pos += 4;
    return buf.readUInt32BE(pos - 4);
  };
  const bytes = () => {
    const n = u32();
    need(n);
    pos += n;
    return Buffer.from(buf.subarray(pos - n, pos));
  };
  const version = u8();
  if (version !== VERSION)
    throw new RawChangeRecordError(`raw change record version ${version} (this build reads ${VERSION})`);
  const kind = u8();
  const count = u32();
  if (kind === KIND_SPLIT) {
    const regions: Region[] = [];
    for (let i = 0; i < count; i++) regions.push(Region.decode(bytes()));
    return { kind: "split", regions };
  }
  if (kind !== KIND_CHANGES && kind !== KIND_CHANGES_IN_ENTRY)
    throw new RawChangeRecordError(`raw change record of unknown kind ${kind}`);
  if (kind === KIND_CHANGES_IN_ENTRY && !entryData)
    throw new RawChangeRecordError("raw change record refers to its raft entry, which it was not given");
  let commands: RaftCmdRequest | undefined;
  const inEntry = (): { value: Buffer; inEntry: ValueInEntry } => {
    const at = { request: u32(), write: u32() };
    commands ??= RaftCmdRequest.decode(entryData!);
    const r = commands.requests[at.request];
    const put = at.write === 0 ? r?.put : r?.conditionalWrite?.writes[at.write - 1]?.put;
    if (!put)
      throw new RawChangeRecordError(
        `raw change record: its entry has no put at request ${at.request}, write ${at.write}`,
      );
    return { value: Buffer.from(put.value), inEntry: at };
  };
  const changes: RawChange[] = [];
  for (let i = 0; i < count; i++) {
    const op = u8();
    const cf = CF_CODES[u8()];
    if (!cf || (op !== OP_PUT && op !== OP_DELETE && (op !== OP_PUT_IN_ENTRY || kind !== KIND_CHANGES_IN_ENTRY)))
      throw new RawChangeRecordError(`raw change record: bad change ${i}`);
    const key = bytes();
    if (op === OP_DELETE) {
      changes.push({ op: "delete", cf, key });
      continue;
    }
    const held = op === OP_PUT_IN_ENTRY ? inEntry() : { value: bytes() };
    need(8);
    const at = Number(buf.readBigUInt64BE(pos));
    pos += 8;
    const change: RawChange = { op: "put", cf, key, ...held };
    if (at !== 0) change.expiresAtMs = at;
    changes.push(change);
  }
  if (pos !== buf.length) throw new RawChangeRecordError(`raw change record: ${buf.length - pos} bytes left over`);
  return { kind: "changes", changes };
}
