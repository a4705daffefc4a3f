import type { Error as RegionErrorPb } from "../proto/errorpb.js";
import type { KeyError } from "../proto/kvrpcpb.js";
import { describeRegionError, RegionError } from "../errors/region-error.js";
import { formatKey } from "../util/bytes.js";
import { TinyKvError } from "../util/errors.js";
import { DeadlineExceededError, errorMessage } from "../util/retry.js";

/**
 * The client gave up on one operation: region errors or unreachable stores kept it from finishing
 * before its deadline. `lastError` says what went wrong last (a region error, a gRPC status...).
 * It is a DeadlineExceededError, so callers may catch either.
 */
export class KvDeadlineError extends DeadlineExceededError {
  constructor(
    readonly op: string,
    readonly key: Buffer | undefined,
    deadlineMs: number,
    readonly attempts: number,
    lastError?: unknown,
  ) {
    super(`${op}${key ? ` ${formatKey(key)}` : ""} (${attempts} attempts)`, deadlineMs, lastError, { key });
  }
}

/** A store refused a request as malformed (the response's `error` string, or a non-retryable gRPC status). */
export class KvRequestError extends TinyKvError {
  constructor(
    readonly op: string,
    readonly storeAddr: string,
    message: string,
  ) {
    super(`${op} at ${storeAddr}: ${message}`);
  }
}

/**
 * A store refused a scan page as too large for one message (gRPC RESOURCE_EXHAUSTED: the
 * server's byte budget for an answer, or gRPC's message limit). The scans ask again for fewer
 * pairs (ScanPage); other requests fail with it.
 */
export class KvAnswerTooLargeError extends KvRequestError {}

/** The region of a request answered with a region error; the client retries these, so users see them only as `lastError`. */
export class RegionRequestError extends TinyKvError {
  /** The region error as the project's one kind (its wire form is `pb`). */
  readonly regionError: RegionError;

  constructor(
    readonly op: string,
    readonly regionId: bigint,
    readonly storeAddr: string,
    readonly pb: RegionErrorPb,
  ) {
    const regionError = RegionError.fromPb(pb);
    super(`${op} on region ${regionId} at ${storeAddr}: ${describeRegionError(regionError)}`, {
      cause: regionError,
      context: { ...regionError.context, regionId },
      answer: true,
    });
    this.regionError = regionError;
  }
}

/** A store could not be reached (gRPC UNAVAILABLE, DEADLINE_EXCEEDED...); retried like a region error. */
export class StoreUnreachableError extends TinyKvError {
  constructor(
    readonly op: string,
    readonly storeAddr: string,
    readonly code: number | undefined,
    cause: unknown,
  ) {
    super(`${op}: store ${storeAddr} unreachable: ${errorMessage(cause)}`, { cause });
  }
}

/** The client was closed: an operation still running (or a retry of it) stops here instead of reconnecting. */
export class KvClientClosedError extends TinyKvError {
  constructor() {
    super("the client is closed");
  }
}

/** The scheduler knows no region for a key (the cluster is not bootstrapped, or heartbeats have not arrived yet). */
export class NoRegionError extends TinyKvError {
  constructor(
    readonly key: Buffer,
    readonly regionId?: bigint,
  ) {
    super(regionId === undefined ? `no region known for key ${formatKey(key)}` : `no region ${regionId} known`, {
      context: { key, regionId },
    });
  }
}

/**
 * A raw watch cannot resume where it was asked to: the region keeps its raw changes only as
 * long as its raft log (compaction, a replica caught up by snapshot), and `fromIndex` is older
 * than `oldestIndex`. The changes in between are gone: start again from now (or from a copy).
 */
export class PositionCompactedError extends TinyKvError {
  constructor(
    readonly regionId: bigint,
    readonly fromIndex: bigint,
    readonly oldestIndex: bigint,
    readonly storeAddr: string,
  ) {
    super(
      `raw watch of region ${regionId}: position ${fromIndex} is compacted at ${storeAddr} (it resumes after ${oldestIndex} at the earliest)`,
      { context: { regionId } },
    );
  }
}

export type TxnConflictReason = "write-conflict" | "rolled-back" | "aborted";

/**
 * The transaction cannot commit: another txn wrote a key after our start_ts (write conflict), or
 * a lock resolver rolled us back (our lock had expired). Nothing of it is visible; the caller may
 * run the whole transaction again with a new start_ts.
 */
export class TxnConflictError extends TinyKvError {
  constructor(
    readonly startTs: bigint,
    readonly reason: TxnConflictReason,
    readonly key: Buffer | undefined,
    detail: string,
  ) {
    super(`txn ${startTs}: ${reason}${key ? ` on ${formatKey(key)}` : ""}: ${detail}`, {
      context: { key },
      answer: true,
    });
  }
}

/**
 * The commit of the primary key was sent but its outcome is unknown (the store did not answer
 * before the deadline). The transaction may or may not be committed; a later read decides.
 */
export class TxnUndeterminedError extends TinyKvError {
  constructor(
    readonly startTs: bigint,
    readonly commitTs: bigint,
    cause: unknown,
  ) {
    super(`txn ${startTs}: commit at ${commitTs} undetermined: ${errorMessage(cause)}`, { cause });
  }
}

/** A transaction used after commit() or rollback(). */
export class TxnStateError extends TinyKvError {
  constructor(
    readonly startTs: bigint,
    state: string,
    op: string,
  ) {
    super(`txn ${startTs}: cannot ${op}: transaction is ${state}`);
  }
}

/** A KeyError the client did not expect at that point (neither a lock nor a conflict). */
export class UnexpectedKeyError extends TinyKvError {
  constructor(
    readonly op: string,
    readonly keyError: KeyError,
  ) {
    super(`${op}: ${describeKeyError(keyError)}`);
  }
}

export function describeKeyError(e: KeyError): string {
  if (e.locked)
    return `locked by txn ${e.locked.lockVersion} (primary ${formatKey(e.locked.primaryLock)}, ttl ${e.locked.lockTtl} ms)`;
  if (e.conflict) return `write conflict on ${formatKey(e.conflict.key)}: committed at ${e.conflict.conflictTs}`;
  if (e.abort) return `abort: ${e.abort}`;
  if (e.retryable) return `retryable: ${e.retryable}`;
  return "empty key error";
}

/** A key is locked by another transaction that is still alive (the reader keeps backing off until its TTL ends). */
export class KeyLockedError extends TinyKvError {
  constructor(
    readonly key: Buffer,
    readonly lockTs: bigint,
    readonly primary: Buffer,
    readonly ttlMs: bigint,
  ) {
    super(`key ${formatKey(key)} is locked by txn ${lockTs} (primary ${formatKey(primary)}, ttl ${ttlMs} ms)`, {
      context: { key },
      answer: true,
    });
  }
}
