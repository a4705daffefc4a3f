import { parseClientCf, UnknownCfError } from "../engine/index.js";
import type { RawKeyspace, Storage } from "../storage/index.js";
import { InvalidArgumentError, rawKeyspace, RegionError } from "../storage/index.js";
import type { Error as RegionErrorPb } from "../../proto/errorpb.js";
import type { RawDeleteRequest, RawGetRequest, RawPutRequest, RawScanRequest } from "../../proto/kvrpcpb.js";
import { KvPair, RawDeleteResponse, RawGetResponse, RawPutResponse, RawScanResponse } from "../../proto/kvrpcpb.js";
import type { Runtime } from "../../util/runtime.js";
import { realRuntime } from "../../util/runtime.js";
import { checkKey, checkScanLimit, checkScanRange, checkValue } from "./validate.js";

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
 * The four raw (non-transactional) rpcs, lab 1. Bad input is answered in `error`, nothing written.
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

  async rawScan(req: RawScanRequest): Promise<RawScanResponse> {
    try {
      const cf = parseClientCf(req.cf);
      checkScanLimit(req.limit);
      checkScanRange(req.startKey, req.endKey);
      const reader = await this.storage.reader(req.context);
      const cursor = reader.iterCF(cf);
      try {
        await cursor.seek(req.startKey);
        const kvs: KvPair[] = [];
        while (cursor.valid && kvs.length < req.limit) {
          if (req.endKey.length > 0 && Buffer.compare(cursor.key, req.endKey) >= 0) break;
          kvs.push(KvPair.create({ key: cursor.key, value: cursor.value }));
          await cursor.next();
        }
        return RawScanResponse.create({ kvs });
      } finally {
        await cursor.close();
        await reader.close();
      }
    } catch (err) {
      return RawScanResponse.create(rawFailure(err));
    }
  }
}
