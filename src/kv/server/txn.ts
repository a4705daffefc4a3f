import type {
  BatchRollbackRequest,
  CheckTxnStatusRequest,
  CommitRequest,
  GetRequest,
  PrewriteRequest,
  ResolveLockRequest,
  ScanRequest,
  TxnHeartBeatRequest,
  KeyError,
} from "../../proto/kvrpcpb.js";
import {
  BatchRollbackResponse,
  CheckTxnStatusResponse,
  CommitResponse,
  GetResponse,
  KvPair,
  PrewriteResponse,
  ResolveLockResponse,
  ScanResponse,
  TxnHeartBeatResponse,
} from "../../proto/kvrpcpb.js";
import type { Error as RegionErrorPb } from "../../proto/errorpb.js";
import type { Storage } from "../storage/index.js";
import { InvalidArgumentError, RegionError } from "../storage/index.js";
import { MAX_SCAN_ANSWER_BYTES } from "./limits.js";
import * as txn from "../../txn/index.js";
import { keyErrorOf } from "./key-error.js";
import { checkKey, checkKeyLength, checkScanLimit, checkValue } from "./validate.js";

/**
 * Runs a command; a region error becomes the response's `region_error` (the client retries
 * elsewhere), anything else propagates: InvalidArgumentError → INVALID_ARGUMENT, the rest INTERNAL.
 */
async function withRegionError<T>(run: () => Promise<T>, onRegionError: (pb: RegionErrorPb) => T): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof RegionError) return onRegionError(err.toPb());
    throw err;
  }
}

function keyErrorOfFirst(result: txn.KeysResult): KeyError | undefined {
  return result.error === undefined ? undefined : keyErrorOf(result.error);
}

/**
 * The transactional rpcs (lab 4): size limits here, Percolator in src/txn. Commands answer in
 * their own terms; the responses, and the KeyError of every refusal (keyErrorOf), are built here.
 */
export class TxnHandlers {
  private readonly runner: txn.CommandRunner;

  constructor(
    readonly storage: Storage,
    bounds: txn.TxnBounds = txn.DEFAULT_TXN_BOUNDS,
  ) {
    this.runner = new txn.CommandRunner(storage, bounds);
  }

  async kvGet(req: GetRequest): Promise<GetResponse> {
    checkKey(req.key);
    return withRegionError(
      async () => {
        const got = await txn.kvGet(this.runner, req);
        if ("error" in got) return GetResponse.create({ error: keyErrorOf(got.error) });
        return got.value === undefined
          ? GetResponse.create({ notFound: true })
          : GetResponse.create({ value: got.value });
      },
      (regionError) => GetResponse.create({ regionError }),
    );
  }

  async kvScan(req: ScanRequest): Promise<ScanResponse> {
    if (req.limit > 0) checkScanLimit(req.limit); // limit 0 is answered with no pairs, as TinyKV does
    return withRegionError(
      async () => {
        const items = await txn.kvScan(this.runner, req, MAX_SCAN_ANSWER_BYTES);
        const pairs = items.map((item) =>
          "error" in item ? KvPair.create({ key: item.key, error: keyErrorOf(item.error) }) : KvPair.create(item),
        );
        return ScanResponse.create({ pairs });
      },
      (regionError) => ScanResponse.create({ regionError }),
    );
  }

  async kvPrewrite(req: PrewriteRequest): Promise<PrewriteResponse> {
    // Every lock of the txn stores the primary key: its size counts once per mutation.
    checkKeyLength(req.primaryLock, "primary_lock");
    req.mutations.forEach((m, i) => {
      checkKey(m.key, `mutations[${i}].key`);
      checkValue(m.value);
    });
    return withRegionError(
      async () => PrewriteResponse.create({ errors: (await txn.kvPrewrite(this.runner, req)).errors.map(keyErrorOf) }),
      (regionError) => PrewriteResponse.create({ regionError }),
    );
  }

  async kvCommit(req: CommitRequest): Promise<CommitResponse> {
    for (const [i, k] of req.keys.entries()) checkKey(k, `keys[${i}]`);
    return withRegionError(
      async () => CommitResponse.create({ error: keyErrorOfFirst(await txn.kvCommit(this.runner, req)) }),
      (regionError) => CommitResponse.create({ regionError }),
    );
  }

  async kvCheckTxnStatus(req: CheckTxnStatusRequest): Promise<CheckTxnStatusResponse> {
    checkKey(req.primaryKey, "primary_key");
    return withRegionError(
      async () => CheckTxnStatusResponse.create(await txn.kvCheckTxnStatus(this.runner, req)),
      (regionError) => CheckTxnStatusResponse.create({ regionError }),
    );
  }

  async kvBatchRollback(req: BatchRollbackRequest): Promise<BatchRollbackResponse> {
    for (const [i, k] of req.keys.entries()) checkKey(k, `keys[${i}]`);
    return withRegionError(
      async () => BatchRollbackResponse.create({ error: keyErrorOfFirst(await txn.kvBatchRollback(this.runner, req)) }),
      (regionError) => BatchRollbackResponse.create({ regionError }),
    );
  }

  async kvResolveLock(req: ResolveLockRequest): Promise<ResolveLockResponse> {
    // Its read finds the locks to resolve: a stale snapshot could miss some.
    if (req.context?.staleRead) throw new InvalidArgumentError("context.stale_read is only for KvGet and KvScan");
    return withRegionError(
      async () => ResolveLockResponse.create({ error: keyErrorOfFirst(await txn.kvResolveLock(this.runner, req)) }),
      (regionError) => ResolveLockResponse.create({ regionError }),
    );
  }

  async kvTxnHeartBeat(req: TxnHeartBeatRequest): Promise<TxnHeartBeatResponse> {
    checkKey(req.primaryLock, "primary_lock");
    return withRegionError(
      async () => {
        const beat = await txn.kvTxnHeartBeat(this.runner, req);
        return "error" in beat
          ? TxnHeartBeatResponse.create({ error: keyErrorOf(beat.error) })
          : TxnHeartBeatResponse.create(beat);
      },
      (regionError) => TxnHeartBeatResponse.create({ regionError }),
    );
  }
}
