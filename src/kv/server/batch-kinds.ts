/** The sub-request kinds of BatchCommands and the unary rpc that serves each. */
import type { BatchCommandsRequest_Request, TinyKvServer } from "../../proto/tinykvpb.js";

/** A sub-request kind: the name of its field in BatchCommandsRequest.Request (TiKV's spelling). */
export type BatchKind = keyof BatchCommandsRequest_Request;

/** The one dispatch table: each kind is served by the unary rpc of the service with this key. */
export const BATCH_KIND_RPC = {
  Get: "kvGet",
  Scan: "kvScan",
  Prewrite: "kvPrewrite",
  Commit: "kvCommit",
  BatchRollback: "kvBatchRollback",
  ResolveLock: "kvResolveLock",
  RawGet: "rawGet",
  RawPut: "rawPut",
  RawDelete: "rawDelete",
  RawScan: "rawScan",
  RawBatchGet: "rawBatchGet",
  RawBatchPut: "rawBatchPut",
  RawBatchDelete: "rawBatchDelete",
  RawDeleteRange: "rawDeleteRange",
  CheckTxnStatus: "kvCheckTxnStatus",
  TxnHeartBeat: "kvTxnHeartBeat",
} as const satisfies Record<BatchKind, keyof TinyKvServer>;

const KINDS = Object.keys(BATCH_KIND_RPC) as BatchKind[];

/** The kind a sub-request sets, or why it cannot be served (none or several set). */
export function kindOf(req: BatchCommandsRequest_Request): BatchKind | string {
  let found: BatchKind | undefined;
  for (const kind of KINDS) {
    if (req[kind] === undefined) continue;
    if (found) return `sub-request sets two kinds (${found} and ${kind})`;
    found = kind;
  }
  return found ?? "sub-request sets no kind this server serves";
}

/** Kinds with no effect but their answer, which may be large: refusable when a stream holds too much. */
export const READ_KINDS: ReadonlySet<BatchKind> = new Set(["Get", "Scan", "RawGet", "RawScan", "RawBatchGet"]);
