import type { LockInfo } from "../proto/kvrpcpb.js";
import type { Logger } from "../util/logger.js";
import { UnexpectedKeyError } from "./errors.js";
import type { Backoff, RequestSender } from "./request.js";

/** How many finished txns' outcomes to remember (so many locks of one txn cost one CheckTxnStatus). */
const RESOLVED_CACHE_SIZE = 2048;

/**
 * Clears locks left by other transactions, as TiKV clients do: CheckTxnStatus on the lock's
 * primary key (with a fresh TSO timestamp, so an expired lock gets rolled back), then ResolveLock
 * in the region of the locked key, committing or rolling back every lock of that txn there.
 */
export class LockResolver {
  /** start_ts → commit_ts (0n = rolled back) of txns known to be finished. */
  private readonly finished = new Map<bigint, bigint>();

  constructor(
    private readonly sender: RequestSender,
    private readonly tso: () => Promise<bigint>,
    private readonly log: Logger,
  ) {}

  /**
   * Returns true when the lock's txn is finished and its locks in the region of `key` are resolved,
   * false while the txn is alive (its primary lock has not expired): the caller backs off.
   */
  async resolve(lock: LockInfo, key: Buffer, bo: Backoff): Promise<boolean> {
    const startTs = lock.lockVersion;
    let commitTs = this.finished.get(startTs);
    if (commitTs === undefined) {
      const currentTs = await this.tso();
      const { resp } = await this.sender.onKey("KvCheckTxnStatus", lock.primaryLock, bo, (t) =>
        t.rpc.kvCheckTxnStatus({ context: t.ctx, primaryKey: lock.primaryLock, lockTs: startTs, currentTs }),
      );
      if (resp.lockTtl > 0n) return false;
      commitTs = resp.commitVersion;
      this.remember(startTs, commitTs);
      this.log.debug(
        { lock_ts: startTs.toString(), commit_ts: commitTs.toString(), action: resp.action },
        "txn status checked",
      );
    }
    const target = lock.key.length > 0 ? lock.key : key;
    const { resp } = await this.sender.onKey("KvResolveLock", target, bo, (t) =>
      t.rpc.kvResolveLock({ context: t.ctx, startVersion: startTs, commitVersion: commitTs }),
    );
    if (resp.error) throw new UnexpectedKeyError(`KvResolveLock of txn ${startTs}`, resp.error);
    return true;
  }

  /** Resolves several locks (one per txn and region); true when none of them is alive. */
  async resolveAll(locks: { lock: LockInfo; key: Buffer }[], bo: Backoff): Promise<boolean> {
    const seen = new Set<string>();
    let allDone = true;
    for (const { lock, key } of locks) {
      const id = `${lock.lockVersion}:${(lock.key.length > 0 ? lock.key : key).toString("hex")}`;
      if (seen.has(id)) continue;
      seen.add(id);
      if (!(await this.resolve(lock, key, bo))) allDone = false;
    }
    return allDone;
  }

  private remember(startTs: bigint, commitTs: bigint): void {
    if (this.finished.size >= RESOLVED_CACHE_SIZE) {
      const oldest = this.finished.keys().next().value;
      if (oldest !== undefined) this.finished.delete(oldest);
    }
    this.finished.set(startTs, commitTs);
  }
}
