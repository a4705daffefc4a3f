import * as grpc from "@grpc/grpc-js";
import type { TinyKvServer } from "../../proto/tinykvpb.js";
import type { RaftMessage, SnapshotChunk } from "../../proto/raft_serverpb.js";
import { Done } from "../../proto/raft_serverpb.js";
import type { Logger } from "../../util/logger.js";
import type { RaftMessageSink } from "../transport/transport.js";
import { BatchCommandsStreams } from "./batch-commands.js";
import { SnapshotAbortedError, UnimplementedError } from "./errors.js";
import { toGrpcStatus } from "./grpc-status.js";
import type { RawHandlers } from "./raw.js";
import { RawCasHandlers } from "./raw-cas.js";
import { RawTtlHandlers } from "./raw-ttl.js";
import type { TxnHandlers } from "./txn.js";

const NO_RAFT = "this store runs in standalone mode: no raft";

function unary<Req, Res>(log: Logger, rpc: string, fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call.request).then(
      (res) => callback(null, res),
      (err: unknown) => {
        const status = toGrpcStatus(err);
        if (status.code === grpc.status.INTERNAL) log.error({ err, rpc }, "rpc failed");
        callback(status, null);
      },
    );
  };
}

/**
 * Builds the tinykvpb.TinyKv implementation: decode, route, map errors; the logic lives elsewhere.
 * `raft` is where raft traffic from other stores goes (the store); absent in standalone mode.
 * `batchStreams` serves BatchCommands (pass one to end its streams before a graceful shutdown).
 */
export function createTinyKvService(opts: {
  raw: RawHandlers;
  txn: TxnHandlers;
  raft?: RaftMessageSink;
  batchStreams?: BatchCommandsStreams;
  log: Logger;
}): TinyKvServer {
  const { raw, txn, raft, log } = opts;
  const batchStreams = opts.batchStreams ?? new BatchCommandsStreams(log);
  const cas = new RawCasHandlers(raw.keyspace);
  const ttl = new RawTtlHandlers(raw.keyspace);
  const service: TinyKvServer = {
    kvGet: unary(log, "KvGet", (r) => txn.kvGet(r)),
    kvScan: unary(log, "KvScan", (r) => txn.kvScan(r)),
    kvPrewrite: unary(log, "KvPrewrite", (r) => txn.kvPrewrite(r)),
    kvCommit: unary(log, "KvCommit", (r) => txn.kvCommit(r)),
    kvCheckTxnStatus: unary(log, "KvCheckTxnStatus", (r) => txn.kvCheckTxnStatus(r)),
    kvBatchRollback: unary(log, "KvBatchRollback", (r) => txn.kvBatchRollback(r)),
    kvResolveLock: unary(log, "KvResolveLock", (r) => txn.kvResolveLock(r)),
    kvTxnHeartBeat: unary(log, "KvTxnHeartBeat", (r) => txn.kvTxnHeartBeat(r)),
    rawGet: unary(log, "RawGet", (r) => raw.rawGet(r)),
    rawPut: unary(log, "RawPut", (r) => raw.rawPut(r)),
    rawDelete: unary(log, "RawDelete", (r) => raw.rawDelete(r)),
    rawScan: unary(log, "RawScan", (r) => raw.rawScan(r)),
    coprocessor: unary(log, "Coprocessor", async () => {
      throw new UnimplementedError("Coprocessor");
    }),
    raft: (call, callback) => {
      if (!raft) {
        callback(toGrpcStatus(new UnimplementedError("Raft", NO_RAFT)), null);
        return;
      }
      call.on("data", (msg: RaftMessage) => raft.onRaftMessage(msg));
      call.on("end", () => callback(null, Done.create()));
      // A peer store going away mid-stream is normal (restart, partition); it reconnects.
      call.on("error", () => undefined);
    },
    snapshot: (call, callback) => {
      if (!raft) {
        callback(toGrpcStatus(new UnimplementedError("Snapshot", NO_RAFT)), null);
        return;
      }
      raft.onSnapshot(call as AsyncIterable<SnapshotChunk>).then(
        () => callback(null, Done.create()),
        (err: unknown) => callback(toGrpcStatus(new SnapshotAbortedError(err)), null),
      );
    },
    batchCommands: (call) => batchHandler(call),
    // --- raw batch and range calls (issue 18) ---
    rawBatchGet: unary(log, "RawBatchGet", (r) => raw.rawBatchGet(r)),
    rawBatchPut: unary(log, "RawBatchPut", (r) => raw.rawBatchPut(r)),
    rawBatchDelete: unary(log, "RawBatchDelete", (r) => raw.rawBatchDelete(r)),
    rawDeleteRange: unary(log, "RawDeleteRange", (r) => raw.rawDeleteRange(r)),
    // --- Raw CAS and TTL (issue 18) ---
    rawCompareAndSwap: unary(log, "RawCompareAndSwap", (r) => cas.rawCompareAndSwap(r)),
    rawGetKeyTtl: unary(log, "RawGetKeyTTL", (r) => ttl.rawGetKeyTtl(r)),
  };
  // Sub-requests go through the unary handlers of this very object: one dispatch table.
  const batchHandler = batchStreams.handler(service);
  return service;
}
