import type { TlsConfig } from "../util/tls.js";
import type * as grpc from "@grpc/grpc-js";
import * as kv from "../proto/kvrpcpb.js";
import type { Runtime } from "../util/runtime.js";
import { realRuntime } from "../util/runtime.js";
import type { BatchKind } from "./batch-stream.js";
import { BatchCommandsStream } from "./batch-stream.js";
import type { KvConnection, KvConnectionFactory } from "./kv-connection.js";
import { DEFAULT_RPC_TIMEOUT_MS, TinyKvRpc } from "./kv-rpc.js";

/** First and largest wait before a broken stream is opened again, ms; unary rpcs bridge the wait. */
const REOPEN_BACKOFF_MS = { initial: 50, max: 2000 };

/**
 * A store connection that sends requests over one BatchCommands stream when the store serves it,
 * and over the unary rpcs when it does not (found at the first request: the stream ends
 * UNIMPLEMENTED, its requests go unary, and so does everything after, on this connection). A
 * broken stream fails its pending requests (BatchStreamBrokenError) and is opened again after a
 * backoff; requests meanwhile go unary on the same channel.
 */
export class BatchedKvRpc implements KvConnection {
  readonly unary: TinyKvRpc;
  private stream: BatchCommandsStream | undefined;
  private unsupported = false;
  private closed = false;
  private reopenAt = 0;
  private backoffMs = REOPEN_BACKOFF_MS.initial;

  constructor(
    readonly addr: string,
    private readonly timeoutMs = DEFAULT_RPC_TIMEOUT_MS,
    options: grpc.ClientOptions = {},
    private readonly runtime: Runtime = realRuntime,
    /** Mutual TLS to the store (the stream shares the unary rpcs' channel); default plaintext. */
    tls?: TlsConfig,
  ) {
    this.unary = new TinyKvRpc(addr, timeoutMs, options, runtime, tls);
  }

  /** Whether requests currently go over the stream (for tests and tools). */
  get mode(): "stream" | "unary" {
    return this.unsupported || !this.stream || this.stream.broken ? "unary" : "stream";
  }

  private send<Res>(kind: BatchKind, request: unknown, unary: () => Promise<Res>): Promise<Res> {
    const stream = this.openStream();
    return stream ? stream.send<Res>(kind, request, unary) : unary();
  }

  private openStream(): BatchCommandsStream | undefined {
    if (this.unsupported || this.closed) return undefined;
    if (this.stream && !this.stream.broken) return this.stream;
    if (this.runtime.now() < this.reopenAt) return undefined;
    const stream = new BatchCommandsStream(this.unary.client, this.addr, this.timeoutMs, this.runtime, {
      onAnswer: () => {
        this.backoffMs = REOPEN_BACKOFF_MS.initial;
      },
      onUnsupported: () => {
        this.unsupported = true;
      },
      onBroken: () => {
        if (this.stream !== stream) return;
        this.stream = undefined;
        this.reopenAt = this.runtime.now() + this.backoffMs * (0.5 + this.runtime.random() / 2);
        this.backoffMs = Math.min(this.backoffMs * 2, REOPEN_BACKOFF_MS.max);
      },
    });
    this.stream = stream;
    return stream;
  }

  rawGet(req: Partial<kv.RawGetRequest>): Promise<kv.RawGetResponse> {
    const m = kv.RawGetRequest.fromPartial(req);
    return this.send("RawGet", m, () => this.unary.rawGet(m));
  }
  rawPut(req: Partial<kv.RawPutRequest>): Promise<kv.RawPutResponse> {
    const m = kv.RawPutRequest.fromPartial(req);
    return this.send("RawPut", m, () => this.unary.rawPut(m));
  }
  rawDelete(req: Partial<kv.RawDeleteRequest>): Promise<kv.RawDeleteResponse> {
    const m = kv.RawDeleteRequest.fromPartial(req);
    return this.send("RawDelete", m, () => this.unary.rawDelete(m));
  }
  rawScan(req: Partial<kv.RawScanRequest>): Promise<kv.RawScanResponse> {
    const m = kv.RawScanRequest.fromPartial(req);
    return this.send("RawScan", m, () => this.unary.rawScan(m));
  }
  kvGet(req: Partial<kv.GetRequest>): Promise<kv.GetResponse> {
    const m = kv.GetRequest.fromPartial(req);
    return this.send("Get", m, () => this.unary.kvGet(m));
  }
  kvScan(req: Partial<kv.ScanRequest>): Promise<kv.ScanResponse> {
    const m = kv.ScanRequest.fromPartial(req);
    return this.send("Scan", m, () => this.unary.kvScan(m));
  }
  kvPrewrite(req: Partial<kv.PrewriteRequest>): Promise<kv.PrewriteResponse> {
    const m = kv.PrewriteRequest.fromPartial(req);
    return this.send("Prewrite", m, () => this.unary.kvPrewrite(m));
  }
  kvCommit(req: Partial<kv.CommitRequest>): Promise<kv.CommitResponse> {
    const m = kv.CommitRequest.fromPartial(req);
    return this.send("Commit", m, () => this.unary.kvCommit(m));
  }
  kvCheckTxnStatus(req: Partial<kv.CheckTxnStatusRequest>): Promise<kv.CheckTxnStatusResponse> {
    const m = kv.CheckTxnStatusRequest.fromPartial(req);
    return this.send("CheckTxnStatus", m, () => this.unary.kvCheckTxnStatus(m));
  }
  kvBatchRollback(req: Partial<kv.BatchRollbackRequest>): Promise<kv.BatchRollbackResponse> {
    const m = kv.BatchRollbackRequest.fromPartial(req);
    return this.send("BatchRollback", m, () => this.unary.kvBatchRollback(m));
  }
  kvResolveLock(req: Partial<kv.ResolveLockRequest>): Promise<kv.ResolveLockResponse> {
    const m = kv.ResolveLockRequest.fromPartial(req);
    return this.send("ResolveLock", m, () => this.unary.kvResolveLock(m));
  }
  kvTxnHeartBeat(req: Partial<kv.TxnHeartBeatRequest>): Promise<kv.TxnHeartBeatResponse> {
    const m = kv.TxnHeartBeatRequest.fromPartial(req);
    return this.send("TxnHeartBeat", m, () => this.unary.kvTxnHeartBeat(m));
  }

  // --- raw batch and range calls (issue 18) ---
  rawBatchGet(req: Partial<kv.RawBatchGetRequest>): Promise<kv.RawBatchGetResponse> {
    const m = kv.RawBatchGetRequest.fromPartial(req);
    return this.send("RawBatchGet", m, () => this.unary.rawBatchGet(m));
  }
  rawBatchPut(req: Partial<kv.RawBatchPutRequest>): Promise<kv.RawBatchPutResponse> {
    const m = kv.RawBatchPutRequest.fromPartial(req);
    return this.send("RawBatchPut", m, () => this.unary.rawBatchPut(m));
  }
  rawBatchDelete(req: Partial<kv.RawBatchDeleteRequest>): Promise<kv.RawBatchDeleteResponse> {
    const m = kv.RawBatchDeleteRequest.fromPartial(req);
    return this.send("RawBatchDelete", m, () => this.unary.rawBatchDelete(m));
  }
  rawDeleteRange(req: Partial<kv.RawDeleteRangeRequest>): Promise<kv.RawDeleteRangeResponse> {
    const m = kv.RawDeleteRangeRequest.fromPartial(req);
    return this.send("RawDeleteRange", m, () => this.unary.rawDeleteRange(m));
  }
  // --- Raw CAS and TTL (issue 18): BatchCommands does not carry them, they go unary.
  rawCompareAndSwap(req: Partial<kv.RawCASRequest>): Promise<kv.RawCASResponse> {
    return this.unary.rawCompareAndSwap(req);
  }
  rawGetKeyTtl(req: Partial<kv.RawGetKeyTTLRequest>): Promise<kv.RawGetKeyTTLResponse> {
    return this.unary.rawGetKeyTtl(req);
  }

  close(): void {
    this.closed = true;
    this.stream?.close();
    this.unary.close();
  }
}

/** gRPC connections that use BatchCommands where the store serves it (the client's default). */
export const batchedKvConnection: KvConnectionFactory = (addr, timeoutMs) => new BatchedKvRpc(addr, timeoutMs);

/** As batchedKvConnection, with mutual TLS when `tls` is given. */
export function batchedKvConnectionWith(tls: TlsConfig | undefined): KvConnectionFactory {
  if (!tls) return batchedKvConnection;
  return (addr, timeoutMs) => new BatchedKvRpc(addr, timeoutMs, {}, realRuntime, tls);
}
