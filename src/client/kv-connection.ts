import type * as kv from "../proto/kvrpcpb.js";

/**
 * One store's TinyKv service as the client uses it: BatchedKvRpc (one BatchCommands stream, or
 * the unary rpcs where the store lacks it) or TinyKvRpc (unary rpcs) over gRPC, or, in the
 * deterministic simulation, the store's service handlers in the same process. Requests are
 * partial messages (unset fields take their protobuf defaults). A failure to reach the store
 * rejects with an error carrying a gRPC status `code` (UNAVAILABLE, DEADLINE_EXCEEDED...); an
 * UNAVAILABLE one with `sent: true` may have reached the store (the connection dropped after the
 * request went out), so a write's outcome is unknown.
 */
export interface KvConnection {
  readonly addr: string;
  rawGet(req: Partial<kv.RawGetRequest>): Promise<kv.RawGetResponse>;
  rawPut(req: Partial<kv.RawPutRequest>): Promise<kv.RawPutResponse>;
  rawDelete(req: Partial<kv.RawDeleteRequest>): Promise<kv.RawDeleteResponse>;
  rawScan(req: Partial<kv.RawScanRequest>): Promise<kv.RawScanResponse>;
  kvGet(req: Partial<kv.GetRequest>): Promise<kv.GetResponse>;
  kvScan(req: Partial<kv.ScanRequest>): Promise<kv.ScanResponse>;
  kvPrewrite(req: Partial<kv.PrewriteRequest>): Promise<kv.PrewriteResponse>;
  kvCommit(req: Partial<kv.CommitRequest>): Promise<kv.CommitResponse>;
  kvCheckTxnStatus(req: Partial<kv.CheckTxnStatusRequest>): Promise<kv.CheckTxnStatusResponse>;
  kvBatchRollback(req: Partial<kv.BatchRollbackRequest>): Promise<kv.BatchRollbackResponse>;
  kvResolveLock(req: Partial<kv.ResolveLockRequest>): Promise<kv.ResolveLockResponse>;
  kvTxnHeartBeat(req: Partial<kv.TxnHeartBeatRequest>): Promise<kv.TxnHeartBeatResponse>;
  // --- raw batch and range calls (issue 18) ---
  rawBatchGet(req: Partial<kv.RawBatchGetRequest>): Promise<kv.RawBatchGetResponse>;
  rawBatchPut(req: Partial<kv.RawBatchPutRequest>): Promise<kv.RawBatchPutResponse>;
  rawBatchDelete(req: Partial<kv.RawBatchDeleteRequest>): Promise<kv.RawBatchDeleteResponse>;
  rawDeleteRange(req: Partial<kv.RawDeleteRangeRequest>): Promise<kv.RawDeleteRangeResponse>;
  // --- Raw CAS and TTL (issue 18): optional, so connections made elsewhere (tests, tools) need not serve them.
  rawCompareAndSwap?(req: Partial<kv.RawCASRequest>): Promise<kv.RawCASResponse>;
  rawGetKeyTtl?(req: Partial<kv.RawGetKeyTTLRequest>): Promise<kv.RawGetKeyTTLResponse>;
  close(): void;
}

/** Makes the connection to a store address; `timeoutMs` is the deadline of each call. */
export type KvConnectionFactory = (addr: string, timeoutMs: number) => KvConnection;
