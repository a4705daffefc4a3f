import type { CfCursor, CfName, Engine, EngineSnapshot } from "../engine/index.js";
import { CF_DEFAULT, CF_WRITE, ENGINE_END_KEY, EngineOpenError } from "../engine/index.js";
import type { Region } from "../../proto/metapb.js";
import { keyInRange } from "../../util/bytes.js";
import { KEY_LAYOUT_KEY } from "./keys.js";

/**
 * Which region a stored key belongs to: one rule for apply checks, readers, snapshots, range
 * clearing and split checks, so they always agree. Region ranges are raw user keys (clients
 * route by them). Raw data lives in its own CFs (`raw_*`, see engine/cf.ts) under the user key
 * itself, and so do Percolator's locks (CF `lock`); Percolator keeps data and commit records in
 * CF `default`/`write` as `EncodeBytes(userKey) | ts(8)`, which does not sort like the user key
 * (`key_00000499` encoded sorts after raw `key_00000500`). EncodeBytes preserves order and is
 * prefix-free, so the versions of the user keys [start, end) are exactly the stored keys in
 * [EncodeBytes(start), EncodeBytes(end)). Every CF of a region is therefore one contiguous range
 * of stored keys, and the regions of a store partition each CF: no key is in two regions or
 * none, whatever its bytes (the first and last region own everything below and above).
 */
export function regionKeyRange(cf: CfName, region: Region): { lower: Buffer; upper: Buffer } {
  if (!isMvccEncodedCf(cf)) return { lower: region.startKey, upper: region.endKey };
  return {
    lower: region.startKey.length === 0 ? region.startKey : encodeBytes(region.startKey),
    upper: region.endKey.length === 0 ? region.endKey : encodeBytes(region.endKey),
  };
}

export function keyInRegion(cf: CfName, key: Buffer, region: Region): boolean {
  const { lower, upper } = regionKeyRange(cf, region);
  return keyInRange(key, lower, upper);
}

/** A cursor over every key of `cf` that belongs to `region`; seek(region.startKey) starts at its first key. */
export function regionCursor(snap: EngineSnapshot, cf: CfName, region: Region): CfCursor {
  // For an encoded CF the lower bound EncodeBytes(start) is >= start, so the cursor's clamp
  // turns seek(region.startKey) into a seek to the region's first key.
  const { lower, upper } = regionKeyRange(cf, region);
  return snap.cursor(cf, lower, upper);
}

/** The CFs whose keys are `EncodeBytes(userKey) | ts`: Percolator's data and commit records. */
export function isMvccEncodedCf(cf: CfName): boolean {
  return cf === CF_DEFAULT || cf === CF_WRITE;
}

/** The user key a stored key of `cf` belongs to (undefined: an encoded CF's key that does not parse). */
export function userKeyOf(cf: CfName, key: Buffer): Buffer | undefined {
  return isMvccEncodedCf(cf) ? mvccUserKey(key) : key;
}

/** The user key of `EncodeBytes(userKey) | ts(8)` (memcomparable, 8-byte groups), or undefined. */
export function mvccUserKey(key: Buffer): Buffer | undefined {
  const groups: Buffer[] = [];
  let off = 0;
  while (off + 9 <= key.length) {
    const marker = key[off + 8]!;
    if (marker === 0xff) {
      groups.push(key.subarray(off, off + 8));
      off += 9;
      continue;
    }
    const pad = 0xff - marker;
    if (pad < 1 || pad > 8) return undefined;
    for (let i = off + 8 - pad; i < off + 8; i++) if (key[i] !== 0) return undefined;
    if (key.length !== off + 9 + 8) return undefined;
    groups.push(key.subarray(off, off + 8 - pad));
    return Buffer.concat(groups);
  }
  return undefined;
}

/** Memcomparable EncodeBytes: 8-byte groups, zero-padded, each followed by 0xFF - padding. */
export function encodeBytes(key: Uint8Array): Buffer {
  const groups = Math.floor(key.length / 8) + 1;
  const out = Buffer.alloc(groups * 9);
  for (let g = 0; g < groups; g++) {
    const chunk = key.subarray(g * 8, g * 8 + 8);
    out.set(chunk, g * 9);
    out[g * 9 + 8] = 0xff - (8 - chunk.length);
  }
  return out;
}

/**
 * Version of the kv engine's key layout. Layout 1 (no marker) kept raw data in the same CFs as
 * transactional data, where a raw key can be indistinguishable from an encoded MVCC key; such
 * a data dir cannot be converted safely, so it is refused rather than misread.
 */
export const KEY_LAYOUT_VERSION = 2n;

export class KeyLayoutError extends EngineOpenError {
  constructor(path: string, reason: string) {
    super(path, reason);
    this.name = "KeyLayoutError";
  }
}

/**
 * Checks that a kv engine holds this build's key layout before anything reads it: an empty
 * engine is marked with the current layout, a marked one must match, and one holding data
 * without a marker was written by a build whose raw and transactional keys shared CFs.
 */
export async function ensureKeyLayout(kv: Engine): Promise<void> {
  const marker = await kv.getMeta(KEY_LAYOUT_KEY);
  if (marker) {
    const version = marker.length === 8 ? marker.readBigUInt64BE(0) : undefined;
    if (version === KEY_LAYOUT_VERSION) return;
    throw new KeyLayoutError(
      kv.path,
      `its key layout is version ${version ?? `0x${marker.toString("hex")}`}, this build reads only version ${KEY_LAYOUT_VERSION}`,
    );
  }
  const [anyKey] = await kv.db.keys({ lt: ENGINE_END_KEY, limit: 1 }).all();
  if (anyKey !== undefined) {
    throw new KeyLayoutError(
      kv.path,
      `it was written by an older tinykv-ts whose raw and transactional keys shared column families, which this version cannot tell apart safely; ` +
        `start this version on an empty data dir (copy the data out with the older version first if you need it)`,
    );
  }
  const value = Buffer.alloc(8);
  value.writeBigUInt64BE(KEY_LAYOUT_VERSION);
  await kv.newBatch().putMeta(KEY_LAYOUT_KEY, value).write(true);
}
