import { CF_LOCK, type CfCursor, type CfName, type EngineSnapshot } from "../engine/index.js";
import type { Region } from "../../proto/metapb.js";
import { keyInRange } from "../../util/bytes.js";

/**
 * Which region a stored key belongs to. Region ranges are raw user keys (clients route by them,
 * CF lock holds raw keys), but Percolator stores data and commit records in CF default and CF
 * write as `EncodeBytes(userKey) | ts(8)`, and that encoding does not sort like the raw key
 * (`key_00000499` encoded sorts after raw `key_00000500`). So a key that parses as such an
 * encoding is routed by its decoded user key; every other key by itself. Apply checks, readers,
 * snapshots, range clearing and split checks all use this one rule, so they always agree.
 */
export function routingKey(cf: CfName, key: Buffer): Buffer {
  return cf === CF_LOCK ? key : (mvccUserKey(key) ?? key);
}

export function keyInRegion(cf: CfName, key: Buffer, region: Region): boolean {
  return keyInRange(routingKey(cf, key), region.startKey, region.endKey);
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
 * A cursor over every key of `cf` that belongs to `region`. Encoded keys of the region's users
 * lie in [EncodeBytes(start), EncodeBytes(end)), which is inside [start, EncodeBytes(end)); the
 * cursor scans that and skips keys of other regions.
 */
export function regionCursor(snap: EngineSnapshot, cf: CfName, region: Region): CfCursor {
  if (cf === CF_LOCK) return snap.cursor(cf, region.startKey, region.endKey);
  const upper = region.endKey.length === 0 ? region.endKey : encodeBytes(region.endKey);
  return snap.cursor(cf, region.startKey, upper, (key) => keyInRange(routingKey(cf, key), region.startKey, region.endKey));
}
