/**
 * How long a transaction's locks live, as TiKV's client-go computes it, and the heartbeat that
 * keeps a long transaction's primary lock alive (KvTxnHeartBeat).
 *
 * A lock expires at physical(start_ts) + ttl. A TTL counted from start_ts alone would make a txn
 * that spends longer than the TTL between begin and prewrite write locks that are already expired,
 * and any reader would roll it back. So the TTL is the time elapsed since the txn began plus a
 * base that grows with the size of the txn (bigger txns take longer to prewrite and commit), and
 * while the commit runs, a heartbeat pushes the primary lock's TTL forward.
 */
import type { Logger } from "../util/logger.js";
import { errorMessage } from "../util/retry.js";
import type { Runtime, TimerHandle } from "../util/runtime.js";
import { KvRequestError } from "./errors.js";
import type { RequestSender, RetryPolicy } from "./request.js";
import { Backoff } from "./request.js";

/** client-go's defaultLockTTL: the base TTL of a small transaction, ms. */
export const DEFAULT_LOCK_TTL_MS = 3000;
/** client-go's ManagedLockTTL: the size-scaled base never grows past this, ms. */
export const MANAGED_LOCK_TTL_MS = 20_000;
/** client-go's ttlFactor: base = 6000 ms * sqrt(txn size in MiB) for txns of 16 KiB or more. */
const TTL_FACTOR_MS = 6000;
const TTL_SCALING_FROM_BYTES = 16 * 1024;
/** The servers' cap on a lock TTL (1 h, TiDB's max-txn-ttl): a txn cannot be kept alive longer. */
export const MAX_LOCK_TTL_MS = 3_600_000;

/** The TTL for locks written `elapsedMs` after the txn began, for a txn of `txnBytes` (keys + values). */
export function txnLockTtlMs(baseMs: number, txnBytes: number, elapsedMs: number): bigint {
  let ttl = baseMs;
  if (txnBytes >= TTL_SCALING_FROM_BYTES) {
    const scaled = TTL_FACTOR_MS * Math.sqrt(txnBytes / (1024 * 1024));
    ttl = Math.min(Math.max(scaled, baseMs), Math.max(baseMs, MANAGED_LOCK_TTL_MS));
  }
  return BigInt(Math.min(MAX_LOCK_TTL_MS, Math.ceil(ttl + Math.max(0, elapsedMs))));
}

export interface LockKeeperDeps {
  sender: RequestSender;
  policy: RetryPolicy;
  runtime: Runtime;
  log: Logger;
}

export interface KeptTxn {
  primary: Buffer;
  startTs: bigint;
  /** Runtime clock reading when the txn began. */
  startedAtMs: number;
  baseTtlMs: number;
  txnBytes: number;
  intervalMs: number;
}

/**
 * Sends KvTxnHeartBeat for a txn's primary lock every `intervalMs` until stopped, each asking for
 * the TTL the txn would get now (elapsed + base). It stops by itself when the primary lock is gone
 * (the txn finished or was rolled back), when a store does not serve the rpc (an old TinyKV
 * server), or when the TTL would pass the servers' cap.
 */
export class LockKeeper {
  private timer: TimerHandle | undefined;
  private stopped = false;

  constructor(
    private readonly d: LockKeeperDeps,
    private readonly txn: KeptTxn,
  ) {}

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.d.runtime.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.d.runtime.setTimeout(() => void this.beat(), this.txn.intervalMs);
  }

  private async beat(): Promise<void> {
    if (this.stopped) return;
    const { primary, startTs } = this.txn;
    const ttl = txnLockTtlMs(this.txn.baseTtlMs, this.txn.txnBytes, this.d.runtime.now() - this.txn.startedAtMs);
    const fields = { start_ts: startTs.toString(), ttl_ms: ttl.toString() };
    if (ttl >= BigInt(MAX_LOCK_TTL_MS)) {
      this.d.log.warn(fields, "txn has run for the longest lock TTL; heartbeats stop and readers may roll it back");
      return;
    }
    // One interval is all a heartbeat may take: the next one tries again.
    const bo = new Backoff(
      "txn heartbeat",
      primary,
      { ...this.d.policy, deadlineMs: this.txn.intervalMs },
      this.d.runtime,
    );
    try {
      const { resp } = await this.d.sender.onKey("KvTxnHeartBeat", primary, bo, (t) =>
        t.rpc.kvTxnHeartBeat({ context: t.ctx, primaryLock: primary, startVersion: startTs, adviseLockTtl: ttl }),
      );
      if (resp.error) {
        this.d.log.debug(fields, "primary lock is gone; heartbeats stop");
        return;
      }
    } catch (err) {
      if (err instanceof KvRequestError) {
        this.d.log.warn({ ...fields, err: err.message }, "store refused the heartbeat; heartbeats stop");
        return;
      }
      this.d.log.warn({ ...fields, err: errorMessage(err) }, "heartbeat failed; trying again at the next interval");
    }
    this.schedule();
  }
}
