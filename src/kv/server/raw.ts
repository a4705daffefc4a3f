import { parseClientCf, UnknownCfError } from "../engine/index.js";
import type { RawCursor, RawKeyspace, Storage } from "../storage/index.js";
import { AnswerTooLargeError, InvalidArgumentError, rawKeyspace, RegionError } from "../storage/index.js";
import type { Error as RegionErrorPb } from "../../proto/errorpb.js";
import type {
  RawBatchDeleteRequest,
  RawBatchGetRequest,
  RawBatchPutRequest,
  RawDeleteRangeRequest,
  RawDeleteRequest,
  RawGetRequest,
  RawPutRequest,
  RawScanRequest,
} from "../../proto/kvrpcpb.js";
import {
  KvPair,
  RawBatchDeleteResponse,
  RawBatchGetResponse,
  RawBatchPutResponse,
  RawDeleteRangeResponse,
  RawDeleteResponse,
  RawGetResponse,
  RawPutResponse,
  RawScanResponse,
} from "../../proto/kvrpcpb.js";
import { MAX_BATCH_GET_ANSWER_BYTES, MAX_SCAN_ANSWER_BYTES } from "./limits.js";
import {
  checkBatch,
  checkDeleteRange,
  checkKey,
  checkReverseScanRange,
  checkScanLimit,
  checkScanRange,
  checkValue,
} from "./validate.js";
import type { Runtime } from "../../util/runtime.js";
import { realRuntime } from "../../util/runtime.js";

/**
 * Outcome of a raw request that failed in a way the client should see in the response:
 * a region error (retry elsewhere) or a plain error string (bad input).
 */
export function rawFailure(err: unknown): { regionError?: RegionErrorPb; error: string } {
  if (err instanceof RegionError) return { regionError: err.toPb(), error: "" };
  if (err instanceof InvalidArgumentError || err instanceof UnknownCfError) return { error: err.message };
  throw err; // an internal fault: the service wrapper turns it into a gRPC INTERNAL status
}

/**
 * The raw (non-transactional) rpcs: lab 1's four, and the batch and range calls of issue 18. Bad input is answered in `error`, nothing written.
 * They see the storage through its raw key space, never Percolator's data (raw-keyspace.ts).
 */
export class RawHandlers {
  /** The storage as the raw API sees it: raw CFs, TTL (raw-keyspace.ts). */
  readonly keyspace: RawKeyspace;

  /** `clock` judges TTL expiry: the node's runtime (a simulation passes its virtual one). */
  constructor(storage: Storage, clock: Pick<Runtime, "now"> = realRuntime) {
    this.keyspace = rawKeyspace(storage, clock);
  }

  private get storage(): RawKeyspace {
    return this.keyspace;
  }

  async rawGet(req: RawGetRequest): Promise<RawGetResponse> {
    try {
      const cf = parseClientCf(req.cf);
      checkKey(req.key);
      const reader = await this.storage.reader(req.context);
      try {
        const value = await reader.getCF(cf, req.key);
        return RawGetResponse.create(value === undefined ? { notFound: true } : { value });
      } finally {
        await reader.close();
      }
    } catch (err) {
      return RawGetResponse.create(rawFailure(err));
    }
  }

  /** `ttl` (seconds, 0 = never expires) may be left out, as TinyKV's own callers do. */
  async rawPut(req: Omit<RawPutRequest, "ttl"> & { ttl?: bigint }): Promise<RawPutResponse> {
    try {
      const cf = parseClientCf(req.cf);
      checkKey(req.key);
      checkValue(req.value);
      await this.storage.write(req.context, [{ kind: "put", cf, key: req.key, value: req.value, ttlSeconds: req.ttl }]);
      return RawPutResponse.create();
    } catch (err) {
      return RawPutResponse.create(rawFailure(err));
    }
  }

  async rawDelete(req: RawDeleteRequest): Promise<RawDeleteResponse> {
    try {
      const cf = parseClientCf(req.cf);
      checkKey(req.key);
      await this.storage.write(req.context, [{ kind: "delete", cf, key: req.key }]);
      return RawDeleteResponse.create();
    } catch (err) {
      return RawDeleteResponse.create(rawFailure(err));
    }
  }

  /**
   * Forward: keys in [start_key, end_key) upward. Reverse (TiKV's semantics): keys in
   * [end_key, start_key) downward, start_key being the exclusive upper bound. Empty = unbounded.
   */
  async rawScan(req: RawScanRequest): Promise<RawScanResponse> {
    try {
      const cf = parseClientCf(req.cf);
      checkScanLimit(req.limit);
      if (req.reverse) checkReverseScanRange(req.startKey, req.endKey);
      else checkScanRange(req.startKey, req.endKey);
      const reader = await this.storage.reader(req.context);
      const cursor = reader.iterCF(cf, { reverse: req.reverse });
      try {
        await cursor.seek(req.startKey);
        const kvs = await collect(cursor, req.limit, (key) =>
          req.reverse
            ? Buffer.compare(key, req.endKey) >= 0
            : req.endKey.length === 0 || Buffer.compare(key, req.endKey) < 0,
        );
        return RawScanResponse.create({ kvs });
      } finally {
        await cursor.close();
        await reader.close();
      }
    } catch (err) {
      // Too large an answer is a gRPC status, as gRPC's own for a message over its limit: the client asks for fewer.
      if (err instanceof AnswerTooLargeError) throw err;
      return RawScanResponse.create(rawFailure(err));
    }
  }

  // ---- raw batch and range calls (issue 18): each is one region's, one raft command ----------

  /** The pairs of the keys found, in the request's key order; keys not found are left out (TiKV's answer). */
  async rawBatchGet(req: RawBatchGetRequest): Promise<RawBatchGetResponse> {
    try {
      const cf = parseClientCf(req.cf);
      checkBatch(req.keys.map((key) => ({ key })));
      const reader = await this.storage.reader(req.context);
      try {
        // A few reads at a time, and none started once the answer is over its limit: a batch may
        // name 65,536 keys (the same one, even), and every value read is held until the answer.
        const values: Array<Buffer | undefined> = new Array(req.keys.length);
        let bytes = 0;
        let next = 0;
        const worker = async () => {
          while (next < req.keys.length && bytes <= MAX_BATCH_GET_ANSWER_BYTES) {
            const i = next++;
            const value = await reader.getCF(cf, req.keys[i]!);
            if (value !== undefined) bytes += req.keys[i]!.length + value.length;
            values[i] = value;
          }
        };
        await Promise.all(Array.from({ length: Math.min(BATCH_GET_READS_AT_ONCE, req.keys.length) }, worker));
        if (bytes > MAX_BATCH_GET_ANSWER_BYTES)
          throw new InvalidArgumentError(
            `the values of these ${req.keys.length} keys pass ${MAX_BATCH_GET_ANSWER_BYTES} bytes, ` +
              "more than one answer may carry: ask for fewer keys at a time",
          );
        const pairs: KvPair[] = [];
        for (let i = 0; i < values.length; i++) {
          const value = values[i];
          if (value !== undefined) pairs.push(KvPair.create({ key: req.keys[i]!, value }));
        }
        return RawBatchGetResponse.create({ pairs });
      } finally {
        await reader.close();
      }
    } catch (err) {
      return RawBatchGetResponse.create(rawFailure(err));
    }
  }

  /** All the pairs or none: one write (one raft command on a raft store). */
  async rawBatchPut(req: RawBatchPutRequest): Promise<RawBatchPutResponse> {
    try {
      const cf = parseClientCf(req.cf);
      checkBatch(req.pairs);
      if (req.ttls.length !== 0 && req.ttls.length !== req.pairs.length)
        throw new InvalidArgumentError(
          `ttls has ${req.ttls.length} entries for ${req.pairs.length} pairs (expected none or one per pair)`,
        );
      await this.storage.write(
        req.context,
        req.pairs.map((p, i) => ({ kind: "put", cf, key: p.key, value: p.value, ttlSeconds: req.ttls[i] })),
      );
      return RawBatchPutResponse.create();
    } catch (err) {
      return RawBatchPutResponse.create(rawFailure(err));
    }
  }

  async rawBatchDelete(req: RawBatchDeleteRequest): Promise<RawBatchDeleteResponse> {
    try {
      const cf = parseClientCf(req.cf);
      checkBatch(req.keys.map((key) => ({ key })));
      await this.storage.write(
        req.context,
        req.keys.map((key) => ({ kind: "delete", cf, key })),
      );
      return RawBatchDeleteResponse.create();
    } catch (err) {
      return RawBatchDeleteResponse.create(rawFailure(err));
    }
  }

  /** Deletes [start_key, end_key) of the region (KeyNotInRegion when the range leaves it). */
  async rawDeleteRange(req: RawDeleteRangeRequest): Promise<RawDeleteRangeResponse> {
    try {
      const cf = parseClientCf(req.cf);
      checkDeleteRange(req.startKey, req.endKey);
      await this.storage.deleteRange(req.context, cf, req.startKey, req.endKey);
      return RawDeleteRangeResponse.create();
    } catch (err) {
      return RawDeleteRangeResponse.create(rawFailure(err));
    }
  }
}

/** Reads a RawBatchGet keeps in flight at once. */
const BATCH_GET_READS_AT_ONCE = 16;

/** Up to `limit` pairs in range; refused (AnswerTooLargeError) past MAX_SCAN_ANSWER_BYTES of keys and values. */
async function collect(cursor: RawCursor, limit: number, inRange: (key: Buffer) => boolean): Promise<KvPair[]> {
  const kvs: KvPair[] = [];
  let bytes = 0;
  while (cursor.valid && kvs.length < limit && inRange(cursor.key)) {
    bytes += cursor.key.length + cursor.value.length;
    if (bytes > MAX_SCAN_ANSWER_BYTES && kvs.length > 0)
      throw new AnswerTooLargeError("RawScan", kvs.length + 1, MAX_SCAN_ANSWER_BYTES);
    kvs.push(KvPair.create({ key: cursor.key, value: cursor.value, expiresAtMs: BigInt(cursor.expiresAtMs ?? 0) }));
    await cursor.next();
  }
  return kvs;
}
