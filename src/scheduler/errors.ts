import { ErrorType } from "../proto/schedulerpb.js";

/**
 * An error the scheduler answers inside a response header (`header.error`), e.g. NOT_BOOTSTRAPPED.
 * The client library raises the same class when it reads such a header.
 */
export class SchedulerError extends Error {
  constructor(
    readonly type: ErrorType,
    message: string,
  ) {
    super(message);
    this.name = "SchedulerError";
  }

  static notBootstrapped(): SchedulerError {
    return new SchedulerError(ErrorType.NOT_BOOTSTRAPPED, "cluster is not bootstrapped");
  }

  static alreadyBootstrapped(): SchedulerError {
    return new SchedulerError(ErrorType.ALREADY_BOOTSTRAPPED, "cluster is already bootstrapped");
  }

  static storeTombstone(storeId: bigint): SchedulerError {
    return new SchedulerError(ErrorType.STORE_TOMBSTONE, `store ${storeId} has been removed (tombstone)`);
  }

  static regionNotFound(what: string): SchedulerError {
    return new SchedulerError(ErrorType.REGION_NOT_FOUND, `region not found: ${what}`);
  }

  static unknown(message: string): SchedulerError {
    return new SchedulerError(ErrorType.UNKNOWN, message);
  }
}

/** The caller's cluster id differs from ours (gRPC FAILED_PRECONDITION on the wire). */
export class ClusterIdMismatchError extends Error {
  constructor(
    readonly expected: bigint,
    readonly got: bigint,
  ) {
    super(`mismatch cluster id, need ${expected} but got ${got}`);
    this.name = "ClusterIdMismatchError";
  }
}

/** A request that is malformed or names something that does not exist (gRPC UNKNOWN / INVALID_ARGUMENT). */
export class InvalidRequestError extends Error {
  constructor(
    message: string,
    readonly grpcCode: "unknown" | "invalid_argument" = "unknown",
  ) {
    super(message);
    this.name = "InvalidRequestError";
  }
}

/** A store state change the scheduler refuses, e.g. tombstoning a store that still holds regions. */
export class StoreStateError extends InvalidRequestError {
  constructor(
    readonly storeId: bigint,
    readonly from: string,
    readonly to: string,
    reason: string,
  ) {
    super(`cannot set store ${storeId} from ${from} to ${to}: ${reason}`, "invalid_argument");
    this.name = "StoreStateError";
  }
}

/** A region heartbeat whose epoch is older than what the scheduler already knows. */
export class StaleRegionError extends Error {
  constructor(
    readonly regionId: bigint,
    readonly got: { version: bigint; confVer: bigint },
    readonly known: { id: bigint; version: bigint; confVer: bigint },
  ) {
    super(
      `region ${regionId} is stale: epoch {version ${got.version}, conf_ver ${got.confVer}} is older than ` +
        `region ${known.id} {version ${known.version}, conf_ver ${known.confVer}}`,
    );
    this.name = "StaleRegionError";
  }
}

/** Metadata on disk that cannot be decoded or contradicts itself. */
export class CorruptMetadataError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`corrupt scheduler metadata at ${key}: ${message}`);
    this.name = "CorruptMetadataError";
  }
}
