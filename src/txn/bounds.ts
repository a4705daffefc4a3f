/**
 * Bounds on the timestamps and TTLs a request may write, so that every lock can end. Without them
 * a lock TTL of 2^64-1 never expires, and a start_ts of 2^64-1 makes a lock that can neither be
 * committed (commit_ts must be larger) nor expire (no current_ts is larger); a rollback or commit
 * record at such a ts would make every later prewrite of its key a write conflict, forever.
 */
import { InvalidArgumentError } from "../kv/storage/index.js";
import type { Runtime } from "../util/runtime.js";
import { realRuntime } from "../util/runtime.js";
import { physicalTime } from "./codec.js";

export interface TxnBounds {
  /** The store's clock the timestamps are measured against (the injected runtime's). */
  clock: Pick<Runtime, "now">;
  /** Longest lock TTL a prewrite or heartbeat may set, ms. */
  maxLockTtlMs: bigint;
  /** How far a written timestamp's physical time may be ahead of this store's clock, ms. */
  maxTsAheadMs: number;
}

/**
 * One hour, TiDB's default `max-txn-ttl`: a transaction kept alive by heartbeats for longer than
 * this can no longer extend its lock, and readers roll it back once that TTL runs out.
 */
export const MAX_LOCK_TTL_MS = 3_600_000n;

/**
 * A TSO timestamp is the scheduler's wall clock in ms (plus a logical counter), so an honest one is
 * ahead of this store's clock only by clock skew. Ten minutes tolerates a badly synchronised host
 * and still bounds how long a lock can outlive its TTL.
 */
export const MAX_TS_AHEAD_MS = 10 * 60 * 1000;

export const DEFAULT_TXN_BOUNDS: TxnBounds = {
  clock: realRuntime,
  maxLockTtlMs: MAX_LOCK_TTL_MS,
  maxTsAheadMs: MAX_TS_AHEAD_MS,
};

/** Refuses a timestamp the TSO cannot have issued yet (0 is never issued either). */
export function requireIssuedTs(bounds: TxnBounds, ts: bigint, what: string): void {
  if (ts === 0n) throw new InvalidArgumentError(`${what} must be a TSO timestamp, got 0`);
  const now = bounds.clock.now();
  const limit = BigInt(Math.floor(now + bounds.maxTsAheadMs));
  if (physicalTime(ts) > limit) {
    throw new InvalidArgumentError(
      `${what} ${ts} is not a timestamp the TSO has issued: its physical time ${physicalTime(ts)} ms is more than ` +
        `${bounds.maxTsAheadMs} ms ahead of this store's clock (${now} ms)`,
    );
  }
}

export function requireLockTtl(bounds: TxnBounds, ttl: bigint, what: string): void {
  if (ttl > bounds.maxLockTtlMs) {
    throw new InvalidArgumentError(`${what} ${ttl} ms is over the maximum lock TTL of ${bounds.maxLockTtlMs} ms`);
  }
}
