import type { CfCursor, CfName, Engine } from "../engine/index.js";
import { CF_DEFAULT, RAW_CF_DEFAULT } from "../engine/index.js";
import { regionCursor, userKeyOf } from "./keyspace.js";
import type { Region } from "../../proto/metapb.js";

export interface SplitCheckResult {
  /** Bytes of keys and values in the region's default CFs (the whole region was scanned). */
  approximateSize: number;
  /** Where to split (a user key), when the region is over the max size. */
  splitKey?: Buffer;
}

/** The CFs whose size decides a split, as TinyKV counts CF default: values of both key spaces. */
const SIZED_CFS: readonly CfName[] = [CF_DEFAULT, RAW_CF_DEFAULT];

/**
 * Scans the region's default CFs (as TinyKV's split checker does) in user-key order, the
 * transactional and the raw one merged: the split key is the user key at which the running size
 * passes `splitSize`, used only when the total passes `maxSize`. The scan is asynchronous (an
 * iterator), so it never blocks the event loop for long.
 */
export async function checkSplit(
  kv: Engine,
  region: Region,
  splitSize: number,
  maxSize: number,
): Promise<SplitCheckResult> {
  const snap = kv.snapshot();
  const cursors = SIZED_CFS.map((cf) => ({ cf, cursor: regionCursor(snap, cf, region) }));
  let size = 0;
  let splitKey: Buffer | undefined;
  try {
    for (const { cursor } of cursors) await cursor.seek(region.startKey);
    for (;;) {
      const next = smallestUserKey(cursors);
      if (!next) break;
      const { cursor } = next;
      size += cursor.key.length + cursor.value.length;
      // A key of an encoded CF that does not parse has no user key to split at; the next one will do.
      if (!splitKey && size > splitSize && next.userKey) splitKey = Buffer.from(next.userKey);
      await cursor.next();
    }
  } finally {
    for (const { cursor } of cursors) await cursor.close();
    await snap.close();
  }
  if (size <= maxSize || !splitKey) return { approximateSize: size };
  // A split key equal to the region start would make an empty left region.
  if (splitKey.equals(region.startKey)) return { approximateSize: size };
  return { approximateSize: size, splitKey };
}

/** The positioned cursor whose current key has the smallest user key (an unparseable key goes first). */
function smallestUserKey(
  cursors: Array<{ cf: CfName; cursor: CfCursor }>,
): { cursor: CfCursor; userKey: Buffer | undefined } | undefined {
  let best: { cursor: CfCursor; userKey: Buffer | undefined } | undefined;
  for (const { cf, cursor } of cursors) {
    if (!cursor.valid) continue;
    const userKey = userKeyOf(cf, cursor.key);
    if (!best || !userKey || (best.userKey && Buffer.compare(userKey, best.userKey) < 0)) best = { cursor, userKey };
    if (!userKey) break;
  }
  return best;
}
