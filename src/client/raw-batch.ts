/**
 * The raw batch and range calls across regions (issue 18): a batch is grouped by region (region
 * cache), each group split by size, and the sub-batches sent in parallel with a limit; a
 * sub-batch that meets a region error or an unreachable store is regrouped and sent again after a
 * backoff, until the operation's deadline. Each sub-batch is one raft command on its region, so
 * it applies whole or not at all; a batch that spans regions is NOT atomic across them.
 */
import type { KvPair } from "../proto/kvrpcpb.js";
import { splitBySize, settleLimited } from "./batches.js";
import { KvRequestError } from "./errors.js";
import { KvOutcomeUnknownError } from "./outcome.js";
import { TinyKvError } from "../util/errors.js";
import type { RpcTarget } from "./region-cache.js";
import type { Backoff, RegionResponse, RequestSender } from "./request.js";

/** Keys per sub-batch: one raft command of ~16k small keys applies in a few ms. */
export const RAW_BATCH_KEYS = 16_384;
/** Bytes of keys and values per sub-batch, far below the servers' 8 MiB batch and raft entry limits. */
export const RAW_BATCH_BYTES = 1024 * 1024;
/** Sub-batches of one call in flight at once (across all regions), unless the caller says otherwise. */
export const RAW_BATCHES_IN_FLIGHT = 8;

/** Framing per item in the raft command (cf, tags, lengths), rounded up. */
const ITEM_OVERHEAD_BYTES = 32;

type RawResponse = RegionResponse & { error?: string };

/**
 * A batch the client refuses before sending any of it (an empty key): the servers would refuse
 * its sub-batch, but only after the other sub-batches were written.
 */
export class RawBatchInputError extends TinyKvError {
  constructor(op: string, index: number) {
    super(`${op}: key ${index} of the batch is empty; keys must not be empty (nothing was sent)`);
  }
}

interface Failed<T> {
  items: T[];
  target: RpcTarget;
  err: Error;
  fast: boolean;
  ambiguous: boolean;
}

/**
 * Sends `items` in sub-batches, one region each, and retries the ones that fail on routing. With
 * `once` (writes), a sub-batch that may have applied is not sent again: the call throws
 * KvOutcomeUnknownError (after every sub-batch in flight settled), as a single raw put does.
 */
export async function sendRawBatches<T, R extends RawResponse>(
  sender: RequestSender,
  op: string,
  items: readonly T[],
  keyOf: (item: T) => Buffer,
  sizeOf: (item: T) => number,
  bo: Backoff,
  opts: { concurrency: number; once: boolean },
  call: (t: RpcTarget, items: T[]) => Promise<R>,
  onAnswer: (items: T[], resp: R) => void,
): Promise<void> {
  const empty = items.findIndex((item) => keyOf(item).length === 0);
  if (empty >= 0) throw new RawBatchInputError(op, empty);
  let pending: readonly T[] = items;
  while (pending.length > 0) {
    const groups = new Map<bigint, { target: RpcTarget; items: T[] }>();
    for (const item of pending) {
      const target = await sender.locate(keyOf(item), bo);
      const g = groups.get(target.region.id);
      if (g) g.items.push(item);
      else groups.set(target.region.id, { target, items: [item] });
    }
    const batches = [...groups.values()].flatMap((g) =>
      splitBySize(g.items, sizeOf, RAW_BATCH_BYTES, RAW_BATCH_KEYS).map((b) => ({ target: g.target, items: b })),
    );
    const results = await settleLimited(batches, opts.concurrency, async (b): Promise<Failed<T> | undefined> => {
      const r = await sender.sendOnce(op, b.target, (t) => call(t, b.items));
      if (!r.resp) return { items: b.items, target: b.target, ...r.retry! };
      if (r.resp.error) throw new KvRequestError(op, b.target.addr, r.resp.error);
      onAnswer(b.items, r.resp);
      return undefined;
    });
    const rejected = results.find((r) => r.status === "rejected");
    if (rejected) throw (rejected as PromiseRejectedResult).reason;
    const failed = results.flatMap((r) => (r as PromiseFulfilledResult<Failed<T> | undefined>).value ?? []);
    const unknown = opts.once ? failed.find((f) => f.ambiguous) : undefined;
    if (unknown)
      throw new KvOutcomeUnknownError(
        `${op} of ${unknown.items.length} keys from`,
        keyOf(unknown.items[0]!),
        unknown.target.addr,
        unknown.err,
      );
    pending = failed.flatMap((f) => f.items);
    if (failed.length > 0) {
      sender.log.debug({ op, sub_batches: failed.length, err: failed[0]!.err.message }, "retrying sub-batches");
      await bo.retry(
        failed[0]!.err,
        failed.every((f) => f.fast),
      );
    }
  }
}

export function keySize(key: Buffer): number {
  return key.length + ITEM_OVERHEAD_BYTES;
}

export function pairSize(p: KvPair): number {
  return p.key.length + p.value.length + ITEM_OVERHEAD_BYTES;
}

/**
 * Deletes [start, end) (empty end: no end) region by region: each region's part is one
 * RawDeleteRange, one raft command there. Not atomic across regions; a part that may have
 * applied is not sent again (KvOutcomeUnknownError), as for every raw write.
 */
export async function deleteRangeAcrossRegions(
  sender: RequestSender,
  start: Buffer,
  end: Buffer,
  cf: string,
  bo: Backoff,
): Promise<void> {
  let cursor = start;
  for (;;) {
    const { resp, target } = await sender.onKey(
      "RawDeleteRange",
      cursor,
      bo,
      (t) => t.rpc.rawDeleteRange({ context: t.ctx, startKey: cursor, endKey: clipEnd(end, t.region.endKey), cf }),
      { once: true },
    );
    if (resp.error) throw new KvRequestError("RawDeleteRange", target.addr, resp.error);
    const regionEnd = target.region.endKey;
    if (regionEnd.length === 0 || (end.length > 0 && Buffer.compare(regionEnd, end) >= 0)) return;
    cursor = regionEnd;
  }
}

/** The smaller of two exclusive ends, where empty means no end. */
export function clipEnd(end: Buffer, regionEnd: Buffer): Buffer {
  if (regionEnd.length === 0) return end;
  if (end.length === 0 || Buffer.compare(regionEnd, end) < 0) return regionEnd;
  return end;
}

/** The values of `keys`, in their order (undefined where a key is not found). */
export async function rawBatchGet(
  sender: RequestSender,
  bo: Backoff,
  keys: Buffer[],
  cf: string,
  concurrency: number,
): Promise<(Buffer | undefined)[]> {
  const found = new Map<string, Buffer>();
  await sendRawBatches(
    sender,
    "RawBatchGet",
    keys,
    (k) => k,
    keySize,
    bo,
    { concurrency, once: false },
    (t, batch) => t.rpc.rawBatchGet({ context: t.ctx, keys: batch, cf }),
    (_batch, resp) => {
      for (const p of resp.pairs) found.set(p.key.toString("hex"), p.value);
    },
  );
  return keys.map((k) => found.get(k.toString("hex")));
}

/** Puts the pairs with RawBatchPut; `ttls` go only when a pair has one. */
export async function rawBatchPut(
  sender: RequestSender,
  bo: Backoff,
  items: { pair: KvPair; ttl: bigint }[],
  cf: string,
  concurrency: number,
): Promise<void> {
  const anyTtl = items.some((i) => i.ttl !== 0n);
  await sendRawBatches(
    sender,
    "RawBatchPut",
    items,
    (i) => i.pair.key,
    (i) => pairSize(i.pair),
    bo,
    { concurrency, once: true },
    (t, batch) =>
      t.rpc.rawBatchPut({
        context: t.ctx,
        pairs: batch.map((i) => i.pair),
        cf,
        ttls: anyTtl ? batch.map((i) => i.ttl) : [],
      }),
    () => undefined,
  );
}

/** Deletes the keys with RawBatchDelete. */
export async function rawBatchDelete(
  sender: RequestSender,
  bo: Backoff,
  keys: Buffer[],
  cf: string,
  concurrency: number,
): Promise<void> {
  await sendRawBatches(
    sender,
    "RawBatchDelete",
    keys,
    (k) => k,
    keySize,
    bo,
    { concurrency, once: true },
    (t, batch) => t.rpc.rawBatchDelete({ context: t.ctx, keys: batch, cf }),
    () => undefined,
  );
}
