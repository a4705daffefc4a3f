/**
 * KvTxnHeartBeat (TiKV's rpc, an extension to TinyKV's protocol): a running transaction extends
 * the TTL of its primary lock, so readers do not roll back a txn that is merely slow. The TTL only
 * grows: max(lock ttl, advise_lock_ttl). No lock of this txn on the key means it was committed or
 * rolled back already: answered TxnNotFound, and the client stops its heartbeat.
 */
import type { TxnHeartBeatRequest } from "../../proto/kvrpcpb.js";
import { requireIssuedTs, requireLockTtl } from "../bounds.js";
import type { TxnKeyError } from "../errors.js";
import { Lock } from "../records.js";
import type { CommandRunner } from "../runner.js";
import { requireKey } from "../validate.js";

/** The primary lock's TTL after the heartbeat, or why the txn has none. */
export type HeartBeatResult = { lockTtl: bigint } | { error: TxnKeyError };

export async function kvTxnHeartBeat(runner: CommandRunner, req: TxnHeartBeatRequest): Promise<HeartBeatResult> {
  const { primaryLock: key, startVersion: startTs, adviseLockTtl } = req;
  requireKey(key, "primary_lock");
  requireIssuedTs(runner.bounds, startTs, "start_version");
  requireLockTtl(runner.bounds, adviseLockTtl, "advise_lock_ttl");

  return runner.write(req.context, [key], startTs, async (txn) => {
    const lock = await txn.getLock(key);
    if (lock === undefined || lock.ts !== startTs) {
      return { error: { kind: "TxnNotFound", key, startTs } };
    }
    if (lock.ttl >= adviseLockTtl) return { lockTtl: lock.ttl };
    txn.putLock(key, new Lock(lock.primary, lock.ts, adviseLockTtl, lock.kind));
    return { lockTtl: adviseLockTtl };
  });
}
