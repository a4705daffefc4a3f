import type { Error as RegionErrorPb } from "../proto/errorpb.js";
import type { KeyError } from "../proto/kvrpcpb.js";
import { formatKey } from "../util/bytes.js";
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
    super(`${op}${key ? ` ${formatKey(key)}` : ""} (${attempts} attempts)`, deadlineMs, lastError);
    this.name = "KvDeadlineError";
  }
}

/** A store refused a request as malformed (the response's `error` string, or a non-retryable gRPC status). */
export class KvRequestError extends Error {
  constructor(readonly op: string, readonly storeAddr: string, message: string) {
    super(`${op} at ${storeAddr}: ${message}`);
    this.name = "KvRequestError";
  }
}

/** The region of a request answered with a region error; the client retries these, so users see them only as `lastError`. */
export class RegionRequestError extends Error {
  constructor(readonly op: string, readonly regionId: bigint, readonly storeAddr: string, readonly pb: RegionErrorPb) {
    super(`${op} on region ${regionId} at ${storeAddr}: ${describeRegionErrorPb(pb)}`);
    this.name = "RegionRequestError";
  }
}

/** A store could not be reached (gRPC UNAVAILABLE, DEADLINE_EXCEEDED...); retried like a region error. */
export class StoreUnreachableError extends Error {
  constructor(readonly op: string, readonly storeAddr: string, readonly code: number | undefined, cause: unknown) {
    super(`${op}: store ${storeAddr} unreachable: ${errorMessage(cause)}`);
    this.name = "StoreUnreachableError";
  }
}

/** The scheduler knows no region for a key (the cluster is not bootstrapped, or heartbeats have not arrived yet). */
export class NoRegionError extends Error {
  constructor(readonly key: Buffer) {
    super(`no region known for key ${formatKey(key)}`);
    this.name = "NoRegionError";
  }
}

export type TxnConflictReason = "write-conflict" | "rolled-back" | "aborted";

/**
 * The transaction cannot commit: another txn wrote a key after our start_ts (write conflict), or
 * a lock resolver rolled us back (our lock had expired). Nothing of it is visible; the caller may
 * run the whole transaction again with a new start_ts.
 */
export class TxnConflictError extends Error {
  constructor(
    readonly startTs: bigint,
    readonly reason: TxnConflictReason,
    readonly key: Buffer | undefined,
    detail: string,
  ) {
    super(`txn ${startTs}: ${reason}${key ? ` on ${formatKey(key)}` : ""}: ${detail}`);
    this.name = "TxnConflictError";
  }
}

/**
 * The commit of the primary key was sent but its outcome is unknown (the store did not answer
 * before the deadline). The transaction may or may not be committed; a later read decides.
 */
export class TxnUndeterminedError extends Error {
  constructor(readonly startTs: bigint, readonly commitTs: bigint, cause: unknown) {
    super(`txn ${startTs}: commit at ${commitTs} undetermined: ${errorMessage(cause)}`);
    this.name = "TxnUndeterminedError";
  }
}

/** A transaction used after commit() or rollback(). */
export class TxnStateError extends Error {
  constructor(readonly startTs: bigint, state: string, op: string) {
    super(`txn ${startTs}: cannot ${op}: transaction is ${state}`);
    this.name = "TxnStateError";
  }
}

/** A KeyError the client did not expect at that point (neither a lock nor a conflict). */
export class UnexpectedKeyError extends Error {
  constructor(readonly op: string, readonly keyError: KeyError) {
    super(`${op}: ${describeKeyError(keyError)}`);
    this.name = "UnexpectedKeyError";
  }
}

export function describeKeyError(e: KeyError): string {
  if (e.locked) return `locked by txn ${e.locked.lockVersion} (primary ${formatKey(e.locked.primaryLock)}, ttl ${e.locked.lockTtl} ms)`;
  if (e.conflict) return `write conflict on ${formatKey(e.conflict.key)}: committed at ${e.conflict.conflictTs}`;
  if (e.abort) return `abort: ${e.abort}`;
  if (e.retryable) return `retryable: ${e.retryable}`;
  return "empty key error";
}

export function describeRegionErrorPb(pb: RegionErrorPb): string {
  if (pb.notLeader) return `not leader (hint: ${pb.notLeader.leader ? `peer ${pb.notLeader.leader.id} on store ${pb.notLeader.leader.storeId}` : "none"})`;
  if (pb.epochNotMatch) return `epoch not match (${pb.epochNotMatch.currentRegions.length} current regions)`;
  if (pb.keyNotInRegion) return `key ${formatKey(pb.keyNotInRegion.key)} not in region`;
  if (pb.regionNotFound) return "region not found";
  if (pb.staleCommand) return "stale command";
  if (pb.storeNotMatch) return `store not match (request for ${pb.storeNotMatch.requestStoreId}, store is ${pb.storeNotMatch.actualStoreId})`;
  return pb.message || "region error";
}

/** A key is locked by another transaction that is still alive (the reader keeps backing off until its TTL ends). */
export class KeyLockedError extends Error {
  constructor(readonly key: Buffer, readonly lockTs: bigint, readonly primary: Buffer, readonly ttlMs: bigint) {
    super(`key ${formatKey(key)} is locked by txn ${lockTs} (primary ${formatKey(primary)}, ttl ${ttlMs} ms)`);
    this.name = "KeyLockedError";
  }
}
