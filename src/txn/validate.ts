/**
 * Input checks shared by the commands. They run before any latch or read, so a malformed request
 * is refused whole (gRPC INVALID_ARGUMENT) and never writes anything.
 */
import { InvalidArgumentError } from "../kv/storage/index.js";

export function requireKey(key: Uint8Array, what: string): void {
  if (key.length === 0) throw new InvalidArgumentError(`${what} must not be empty`);
}

export function requireKeys(keys: readonly Uint8Array[], what: string): void {
  for (const [i, k] of keys.entries()) requireKey(k, `${what}[${i}]`);
}

/** Timestamp 0 is never handed out by the TSO; a request carrying it is a client bug. */
export function requireTs(ts: bigint, what: string): void {
  if (ts === 0n) throw new InvalidArgumentError(`${what} must be a TSO timestamp, got 0`);
}

/** A commit timestamp comes from the TSO after the start timestamp, so it is strictly larger. */
export function requireCommitAfterStart(startTs: bigint, commitTs: bigint): void {
  if (commitTs <= startTs) {
    throw new InvalidArgumentError(`commit_version ${commitTs} must be greater than start_version ${startTs}`);
  }
}
