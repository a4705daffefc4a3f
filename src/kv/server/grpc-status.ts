import * as grpc from "@grpc/grpc-js";
import { AnswerTooLargeError, InvalidArgumentError } from "../storage/index.js";
import { SnapshotLimitError } from "../raftstore/snapshot-limits.js";
import { SnapshotAbortedError, UnimplementedError } from "./errors.js";
import { errorMessage } from "../../util/retry.js";

/** A gRPC status to answer with: the code a client acts on, the details a human reads. */
export interface GrpcStatus {
  code: grpc.status;
  details: string;
}

/**
 * The one converter from a thrown error to the status this server answers with. Region errors
 * and transaction refusals never get here: they are values in the response. What does is a
 * malformed request (INVALID_ARGUMENT), a scan whose answer would not fit one message
 * (RESOURCE_EXHAUSTED), an rpc not served (UNIMPLEMENTED), a snapshot stream over a limit
 * of the store (RESOURCE_EXHAUSTED) or otherwise refused (ABORTED), or a fault of ours
 * (INTERNAL, logged by the caller).
 */
export function toGrpcStatus(err: unknown): GrpcStatus {
  if (err instanceof UnimplementedError) return { code: grpc.status.UNIMPLEMENTED, details: err.message };
  if (err instanceof InvalidArgumentError) return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  if (err instanceof AnswerTooLargeError) return { code: grpc.status.RESOURCE_EXHAUSTED, details: err.message };
  if (err instanceof SnapshotLimitError) return { code: grpc.status.RESOURCE_EXHAUSTED, details: err.message };
  if (err instanceof SnapshotAbortedError)
    return err.cause instanceof SnapshotLimitError
      ? toGrpcStatus(err.cause)
      : { code: grpc.status.ABORTED, details: err.message };
  return { code: grpc.status.INTERNAL, details: errorMessage(err) };
}
