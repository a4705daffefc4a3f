/**
 * KvTxnHeartBeat (TiKV's rpc, an extension to TinyKV's protocol): a running transaction extends
 * the TTL of its primary lock, so readers do not roll back a txn that is merely slow. The TTL only
 * grows: max(lock ttl, advise_lock_ttl). No lock of this txn on the key means it was committed or
 * rolled back already: answered TxnNotFound, and the client stops its heartbeat.
 */
import { KeyError, TxnHeartBeatResponse, TxnNotFound, type TxnHeartBeatRequest } from "../../proto/kvrpcpb.js";
import { formatKey } from "../../util/bytes.js";
import { requireIssuedTs, requireLockTtl } from "../bounds.js";
import { Lock } from "../records.js";
import type { CommandRunner } from "../runner.js";
import { requireKey } from "../validate.js";

export async function kvTxnHeartBeat(runner: CommandRunner, req: TxnHeartBeatRequest): Promise<TxnHeartBeatResponse> {
  const { primaryLock: key, startVersion: startTs, adviseLockTtl } = req;
  requireKey(key, "primary_lock");
  requireIssuedTs(runner.bounds, startTs, "start_version");
  requireLockTtl(runner.bounds, adviseLockTtl, "advise_lock_ttl");

  return runner.write(req.context, [key], startTs, async (txn) => {
    const lock = await txn.getLock(key);
    if (lock === undefined || lock.ts !== startTs) {
      return TxnHeartBeatResponse.create({
        error: KeyError.create({
          txnNotFound: TxnNotFound.create({ startTs, primaryKey: key }),
          // For clients that know only TinyKV's KeyError fields: the txn is over, stop.
          abort: `txn ${startTs} has no lock on ${formatKey(key)}: it is committed or rolled back`,
        }),
      });
    }
    if (lock.ttl >= adviseLockTtl) return TxnHeartBeatResponse.create({ lockTtl: lock.ttl });
    txn.putLock(key, new Lock(lock.primary, lock.ts, adviseLockTtl, lock.kind));
    return TxnHeartBeatResponse.create({ lockTtl: adviseLockTtl });
  });
}
