/**
 * Splitting a transaction's keys into requests of bounded size. Each txn request becomes one raft
 * entry on its region's leader; a prewrite of 170,000 keys sent as one request is an entry of
 * ~14 MiB, over the servers' entry limit and close to gRPC's message limit. client-go sends
 * batches of 16 KiB; we choose 1 MiB or 4,096 keys, whichever comes first: a 100 MB txn is ~100
 * requests, and an estimate off by a factor of 8 still fits the servers' 8 MiB entry limit.
 */
import type { Mutation } from "../proto/kvrpcpb.js";

/** Estimated raft entry bytes per request. A single key larger than this goes alone. */
export const TXN_BATCH_BYTES = 1024 * 1024;
/**
 * Keys per request: a server spends two engine reads per key, so a request of small keys is
 * bounded by count too, and answers within an rpc deadline even on a loaded store.
 */
export const TXN_BATCH_KEYS = 4096;
/** Requests of one operation in flight at once, across all regions. */
export const TXN_BATCHES_IN_FLIGHT = 8;

/** Framing per change in a raft command (cf name, tags, lengths), generously rounded up. */
const CHANGE_OVERHEAD_BYTES = 32;

/**
 * A prewritten key's share of the entry: the value put (MVCC key ~ 1.125 x key + 8, value) and the
 * lock put (key, primary + 17 bytes).
 */
export function prewriteEntryBytes(m: Mutation, primary: Buffer): number {
  return 3 * m.key.length + m.value.length + primary.length + 2 * CHANGE_OVERHEAD_BYTES;
}

/** A committed or rolled back key's share: at most a write record put and lock and value deletes. */
export function finishEntryBytes(key: Buffer): number {
  return 4 * key.length + 3 * CHANGE_OVERHEAD_BYTES;
}

/** Consecutive runs of at most `maxItems` of `items` whose sizes sum to at most `maxBytes` (an oversized item alone). */
export function splitBySize<T>(
  items: readonly T[],
  sizeOf: (item: T) => number,
  maxBytes = TXN_BATCH_BYTES,
  maxItems = TXN_BATCH_KEYS,
): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (current.length > 0 && (bytes + size > maxBytes || current.length >= maxItems)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Promise.allSettled over `items` with at most `limit` calls of `fn` running at once. */
export async function settleLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { status: "fulfilled", value: await fn(items[i]!) };
      } catch (reason) {
        results[i] = { status: "rejected", reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
