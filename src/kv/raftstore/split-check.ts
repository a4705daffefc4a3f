import { CF_DEFAULT, type Engine } from "../engine/index.js";
import type { Region } from "../../proto/metapb.js";

export interface SplitCheckResult {
  /** Bytes of keys and values in the region's default CF (the whole region was scanned). */
  approximateSize: number;
  /** Where to split, when the region is over the max size. */
  splitKey?: Buffer;
}

/**
 * Scans the region's default CF (as TinyKV's split checker does): the split key is the first
 * key at which the running size passes `splitSize`, used only when the total passes `maxSize`.
 * The scan is asynchronous (an iterator), so it never blocks the event loop for long.
 */
export async function checkSplit(kv: Engine, region: Region, splitSize: number, maxSize: number): Promise<SplitCheckResult> {
  const snap = kv.snapshot();
  const cursor = snap.cursor(CF_DEFAULT, region.startKey, region.endKey);
  let size = 0;
  let splitKey: Buffer | undefined;
  try {
    await cursor.seek(region.startKey);
    while (cursor.valid) {
      size += cursor.key.length + cursor.value.length;
      if (!splitKey && size > splitSize) splitKey = Buffer.from(cursor.key);
      await cursor.next();
    }
  } finally {
    await cursor.close();
    await snap.close();
  }
  if (size <= maxSize || !splitKey) return { approximateSize: size };
  splitKey = userKeyBoundary(splitKey);
  // A split key equal to the region start would make an empty left region.
  if (splitKey.equals(region.startKey)) return { approximateSize: size };
  return { approximateSize: size, splitKey };
}

/**
 * Transactional data keys in CF default are `EncodeBytes(userKey) | ^ts(8)`. Region ranges are
 * raw user keys (the client routes by them, and CF lock holds raw keys), so such a key is turned
 * back into its raw user key: the versions of one key then never straddle regions, and the key's
 * lock lives in the same region as its data. Raw keys that do not parse that way are used as
 * they are.
 */
export function userKeyBoundary(key: Buffer): Buffer {
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
    if (pad < 1 || pad > 8) return key;
    for (let i = off + 8 - pad; i < off + 8; i++) if (key[i] !== 0) return key;
    const end = off + 9;
    if (key.length !== end + 8) return key;
    groups.push(key.subarray(off, off + 8 - pad));
    return Buffer.concat(groups);
  }
  return key;
}
