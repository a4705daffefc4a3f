/** The tinykv-ts client library: `KvClient.connect({ scheduler })`, raw API and transactions. */
export * from "./client.js";
export { type KvClientOptions, schedulerRetryDeadlineMs } from "./client-options.js";
export * from "./errors.js";
export { KvOutcomeUnknownError } from "./outcome.js";
export * from "./txn.js";
export type { CasExpectation, CasResult } from "./raw-cas.js";
export { RegionCache, type CachedRegion, type RpcTarget } from "./region-cache.js";
export { Backoff, DEFAULT_RETRY_POLICY, type RetryPolicy } from "./request.js";
export { TinyKvRpc, DEFAULT_RPC_TIMEOUT_MS } from "./kv-rpc.js";
export { BatchedKvRpc, batchedKvConnection } from "./kv-batch-rpc.js";
export { BatchRequestError, BatchStreamBrokenError } from "./batch-stream.js";
export type { KvConnection, KvConnectionFactory } from "./kv-connection.js";
export { DEFAULT_LOCK_TTL_MS, MANAGED_LOCK_TTL_MS, MAX_LOCK_TTL_MS, txnLockTtlMs } from "./lock-ttl.js";
export { TXN_BATCH_BYTES, TXN_BATCH_KEYS, TXN_BATCHES_IN_FLIGHT } from "./batches.js";
export { TlsConfig, TlsConfigError, type TlsFiles, type TlsPem } from "../util/tls.js";
export { Watch, prefixRange, type WatchOptions } from "./watch.js";
export {
  RawWatch,
  RawWatchRangeError,
  type RawWatchEvent,
  type RawWatchOptions,
  type RawWatchPosition,
} from "./raw-watch.js";
export type { WatchChange, WatchEvent, WatchPosition, WatchResolved } from "./watch-merge.js";
export { InvalidReadOptionError, type ReadOptions, type StaleRead } from "./read-options.js";
export { RAW_BATCH_BYTES, RAW_BATCH_KEYS, RAW_BATCHES_IN_FLIGHT, RawBatchInputError } from "./raw-batch.js";
