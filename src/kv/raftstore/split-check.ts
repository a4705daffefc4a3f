import { CF_DEFAULT, type Engine } from "../engine/index.js";
import { mvccUserKey, regionCursor } from "./keyspace.js";
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
  const cursor = regionCursor(snap, CF_DEFAULT, region);
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

/** A split key that never separates the versions of one user key (see keyspace.ts). */
export function userKeyBoundary(key: Buffer): Buffer {
  return mvccUserKey(key) ?? key;
}
