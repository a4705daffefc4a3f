import * as grpc from "@grpc/grpc-js";
import * as kv from "../proto/kvrpcpb.js";
import { TinyKvClient } from "../proto/tinykvpb.js";
import { MAX_GRPC_MESSAGE_BYTES } from "../kv/server/limits.js";
import type { Runtime } from "../util/runtime.js";
import { realRuntime } from "../util/runtime.js";
import type { TlsConfig } from "../util/tls.js";
import { grpcChannelCredentials } from "../util/tls.js";
import type { KvConnection } from "./kv-connection.js";

/** Default per-call deadline of the promise client. */
export const DEFAULT_RPC_TIMEOUT_MS = 10_000;

type Callback<Res> = (err: grpc.ServiceError | null, res: Res) => void;
type Method<Req, Res> = (
  req: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  cb: Callback<Res>,
) => grpc.ClientUnaryCall;

/**
 * grpc-js's UNAVAILABLE details for a call that never reached the server (no connection; the
 * channel closed first; the server refused the stream before reading it): safe to send again.
 * Any other UNAVAILABLE (a connection dropped after the request went out) may have been served.
 */
const NOT_SENT = ["No connection established", "Channel closed before call started", "Stream refused by server"];

/** Marks an UNAVAILABLE failure with `sent`: whether the request may have reached the store (KvConnection). */
function withSent(err: grpc.ServiceError): grpc.ServiceError {
  if (err.code !== grpc.status.UNAVAILABLE) return err;
  const details = String(err.details ?? "");
  return Object.assign(err, { sent: !NOT_SENT.some((t) => details.includes(t)) });
}

/**
 * A promise-based client of one tinykv-server's TinyKv service. Requests are partial
 * messages: unset fields take their protobuf defaults.
 */
export class TinyKvRpc implements KvConnection {
  readonly client: TinyKvClient;

  constructor(
    readonly addr: string,
    private readonly timeoutMs = DEFAULT_RPC_TIMEOUT_MS,
    options: grpc.ClientOptions = {},
    /** The clock of call deadlines. */
    private readonly runtime: Runtime = realRuntime,
    /** Mutual TLS to the store; default plaintext. */
    tls?: TlsConfig,
  ) {
    // The server answers up to MAX_GRPC_MESSAGE_BYTES (a max-size value and its envelope); grpc-js's
    // default receive limit of 4 MiB would make a stored 4-8 MiB value unreadable.
    this.client = new TinyKvClient(addr, grpcChannelCredentials(tls), {
      "grpc.enable_channelz": 0,
      "grpc.max_receive_message_length": MAX_GRPC_MESSAGE_BYTES,
      ...options,
    });
  }

  private unary<Req, Res>(method: unknown, req: Req): Promise<Res> {
    const m = method as Method<Req, Res>;
    return new Promise((resolve, reject) => {
      m.call(this.client, req, new grpc.Metadata(), { deadline: this.runtime.now() + this.timeoutMs }, (err, res) =>
        err ? reject(withSent(err)) : resolve(res),
      );
    });
  }

  rawGet(req: Partial<kv.RawGetRequest>): Promise<kv.RawGetResponse> {
    return this.unary(this.client.rawGet, kv.RawGetRequest.fromPartial(req));
  }
  rawPut(req: Partial<kv.RawPutRequest>): Promise<kv.RawPutResponse> {
    return this.unary(this.client.rawPut, kv.RawPutRequest.fromPartial(req));
  }
  rawDelete(req: Partial<kv.RawDeleteRequest>): Promise<kv.RawDeleteResponse> {
    return this.unary(this.client.rawDelete, kv.RawDeleteRequest.fromPartial(req));
  }
  rawScan(req: Partial<kv.RawScanRequest>): Promise<kv.RawScanResponse> {
    return this.unary(this.client.rawScan, kv.RawScanRequest.fromPartial(req));
  }
  kvGet(req: Partial<kv.GetRequest>): Promise<kv.GetResponse> {
    return this.unary(this.client.kvGet, kv.GetRequest.fromPartial(req));
  }
  kvScan(req: Partial<kv.ScanRequest>): Promise<kv.ScanResponse> {
    return this.unary(this.client.kvScan, kv.ScanRequest.fromPartial(req));
  }
  kvPrewrite(req: Partial<kv.PrewriteRequest>): Promise<kv.PrewriteResponse> {
    return this.unary(this.client.kvPrewrite, kv.PrewriteRequest.fromPartial(req));
  }
  kvCommit(req: Partial<kv.CommitRequest>): Promise<kv.CommitResponse> {
    return this.unary(this.client.kvCommit, kv.CommitRequest.fromPartial(req));
  }
  kvCheckTxnStatus(req: Partial<kv.CheckTxnStatusRequest>): Promise<kv.CheckTxnStatusResponse> {
    return this.unary(this.client.kvCheckTxnStatus, kv.CheckTxnStatusRequest.fromPartial(req));
  }
  kvBatchRollback(req: Partial<kv.BatchRollbackRequest>): Promise<kv.BatchRollbackResponse> {
    return this.unary(this.client.kvBatchRollback, kv.BatchRollbackRequest.fromPartial(req));
  }
  kvResolveLock(req: Partial<kv.ResolveLockRequest>): Promise<kv.ResolveLockResponse> {
    return this.unary(this.client.kvResolveLock, kv.ResolveLockRequest.fromPartial(req));
  }

  kvTxnHeartBeat(req: Partial<kv.TxnHeartBeatRequest>): Promise<kv.TxnHeartBeatResponse> {
    return this.unary(this.client.kvTxnHeartBeat, kv.TxnHeartBeatRequest.fromPartial(req));
  }

  // --- raw batch and range calls (issue 18) ---
  rawBatchGet(req: Partial<kv.RawBatchGetRequest>): Promise<kv.RawBatchGetResponse> {
    return this.unary(this.client.rawBatchGet, kv.RawBatchGetRequest.fromPartial(req));
  }
  rawBatchPut(req: Partial<kv.RawBatchPutRequest>): Promise<kv.RawBatchPutResponse> {
    return this.unary(this.client.rawBatchPut, kv.RawBatchPutRequest.fromPartial(req));
  }
  rawBatchDelete(req: Partial<kv.RawBatchDeleteRequest>): Promise<kv.RawBatchDeleteResponse> {
    return this.unary(this.client.rawBatchDelete, kv.RawBatchDeleteRequest.fromPartial(req));
  }
  rawDeleteRange(req: Partial<kv.RawDeleteRangeRequest>): Promise<kv.RawDeleteRangeResponse> {
    return this.unary(this.client.rawDeleteRange, kv.RawDeleteRangeRequest.fromPartial(req));
  }
  // --- Raw CAS and TTL (issue 18) ---
  rawCompareAndSwap(req: Partial<kv.RawCASRequest>): Promise<kv.RawCASResponse> {
    return this.unary(this.client.rawCompareAndSwap, kv.RawCASRequest.fromPartial(req));
  }
  rawGetKeyTtl(req: Partial<kv.RawGetKeyTTLRequest>): Promise<kv.RawGetKeyTTLResponse> {
    return this.unary(this.client.rawGetKeyTtl, kv.RawGetKeyTTLRequest.fromPartial(req));
  }

  close(): void {
    this.client.close();
  }
}
