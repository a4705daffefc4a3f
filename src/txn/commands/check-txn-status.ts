/**
 * KvCheckTxnStatus: the state of a txn, read from its primary key, as other txns' lock resolvers
 * ask it. A live lock answers its TTL; an expired one is rolled back (TTLExpireRollback); with no
 * lock the txn's write record answers committed (commit_version) or rolled back, and when there is
 * no record either, a rollback record is written (LockNotExistRollback) so that the txn's prewrite,
 * if still in flight, can never succeed later.
 */
import type { CheckTxnStatusRequest } from "../../proto/kvrpcpb.js";
import { Action } from "../../proto/kvrpcpb.js";
import { physicalTime } from "../codec.js";
import { WriteKind } from "../records.js";
import type { CommandRunner } from "../runner.js";
import { requireIssuedTs } from "../bounds.js";
import { requireKey } from "../validate.js";
import { putRollbackRecord, removeOwnLock } from "./key-actions.js";

/** What was found (and done): a live lock's TTL, or the commit ts (0: rolled back) of a finished txn. */
export interface TxnStatus {
  action: Action;
  lockTtl: bigint;
  commitVersion: bigint;
}

const status = (action: Action, lockTtl = 0n, commitVersion = 0n): TxnStatus => ({ action, lockTtl, commitVersion });

export async function kvCheckTxnStatus(runner: CommandRunner, req: CheckTxnStatusRequest): Promise<TxnStatus> {
  const { primaryKey: key, lockTs, currentTs } = req;
  requireKey(key, "primary_key");
  requireIssuedTs(runner.bounds, lockTs, "lock_ts");
  // A current_ts from the future would declare every live lock expired.
  requireIssuedTs(runner.bounds, currentTs, "current_ts");

  return runner.write(req.context, [key], lockTs, async (txn) => {
    const lock = await txn.getLock(key);
    if (lock !== undefined && lock.ts === lockTs) {
      // TTL is in ms of the TSO's physical clock: expired once lock time + ttl has passed.
      if (physicalTime(lock.ts) + lock.ttl <= physicalTime(currentTs)) {
        removeOwnLock(txn, key, lock);
        await putRollbackRecord(txn, key);
        return status(Action.TTLExpireRollback);
      }
      // Alive: lock_ttl > 0 is how the answer says "locked" (both 0 reads as rolled back), so a
      // lock prewritten with TTL 0 and checked with a current_ts older than it still answers 1.
      return status(Action.NoAction, lock.ttl > 0n ? lock.ttl : 1n);
    }
    const own = await txn.currentWrite(key);
    if (own !== undefined) {
      const committed = own.write.kind !== WriteKind.Rollback;
      return status(Action.NoAction, 0n, committed ? own.commitTs : 0n);
    }
    await putRollbackRecord(txn, key);
    return status(Action.LockNotExistRollback);
  });
}
