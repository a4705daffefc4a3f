import type { ErrorContext } from "../../util/errors.js";
import { TinyKvError } from "../../util/errors.js";
import { errorMessage } from "../../util/retry.js";

/** Base class of the transport's errors: always says which store and why. */
export class TransportError extends TinyKvError {
  constructor(message: string, cause?: unknown, context?: ErrorContext) {
    super(cause === undefined ? message : `${message}: ${errorMessage(cause)}`, { cause, context });
  }
}

/** The resolver has no address for a store (unknown id, or the scheduler does not know it yet). */
export class StoreNotFoundError extends TransportError {
  constructor(
    readonly storeId: bigint,
    detail = "no address known",
  ) {
    super(`store ${storeId}: ${detail}`, undefined, { storeId });
  }
}

/** A destination store of raft messages could not be reached, or its stream broke (the client library has its own StoreUnreachableError for rpcs). */
export class DestinationUnreachableError extends TransportError {
  constructor(
    readonly storeId: bigint,
    readonly addr: string | undefined,
    cause?: unknown,
  ) {
    super(`store ${storeId}${addr ? ` at ${addr}` : ""} unreachable`, cause, { storeId });
  }
}

/** One snapshot stream failed (source error, peer error, receiver stopped, timeout). */
export class SnapshotSendError extends TransportError {
  constructor(
    readonly storeId: bigint,
    readonly regionId: bigint,
    cause?: unknown,
  ) {
    super(`snapshot of region ${regionId} to store ${storeId} failed`, cause, { storeId, regionId });
  }
}

/** A message the transport cannot route: a caller bug, so it is thrown. */
export class InvalidRaftMessageError extends TransportError {
  constructor(detail: string) {
    super(`invalid raft message: ${detail}`);
  }
}

/** A raft-over-TCP connection went past one of the receiver's bounds (tcp-receiver.ts) and was closed. */
export class RaftConnectionLimitError extends TransportError {
  constructor(
    readonly limit: "idleTimeoutMs" | "maxConnections" | "maxBufferedBytes",
    readonly value: number,
    detail: string,
  ) {
    super(`raft connection closed: ${detail} (${limit} ${value})`);
    this.name = "RaftConnectionLimitError";
  }
}
