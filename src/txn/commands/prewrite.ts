/**
 * KvPrewrite, Percolator's first phase: lock every key of the request and stage its value at
 * start_ts. Refused per key when a newer write exists (write conflict) or another txn holds a lock;
 * if any key is refused nothing is written, so a request either locks all its keys or none.
 */
import { KeyError, Op, PrewriteResponse, WriteConflict, type PrewriteRequest } from "../../proto/kvrpcpb.js";
import { InvalidArgumentError } from "../../kv/storage/index.js";
import { Lock, WriteKind, writeKindFromOp } from "../records.js";
import type { CommandRunner } from "../runner.js";
import { requireIssuedTs, requireLockTtl } from "../bounds.js";
import { requireKey } from "../validate.js";

export async function kvPrewrite(runner: CommandRunner, req: PrewriteRequest): Promise<PrewriteResponse> {
  const { mutations, startVersion: startTs } = req;
  if (mutations.length === 0) return PrewriteResponse.create();
  requireIssuedTs(runner.bounds, startTs, "start_version");
  requireLockTtl(runner.bounds, req.lockTtl, "lock_ttl");
  requireKey(req.primaryLock, "primary_lock");
  const kinds = mutations.map((m, i) => {
    requireKey(m.key, `mutations[${i}].key`);
    return writeKindFromOp(m.op);
  });
  if (kinds.includes(WriteKind.Rollback)) throw new InvalidArgumentError("mutation op Rollback cannot be prewritten");

  return runner.write(req.context, mutations.map((m) => m.key), startTs, async (txn) => {
    const errors: KeyError[] = [];
    for (const [i, m] of mutations.entries()) {
      const latest = await txn.mostRecentWrite(m.key);
      if (latest !== undefined && latest.commitTs >= startTs) {
        // Someone committed (or rolled back this txn) at or after our snapshot: a lost update otherwise.
        errors.push(
          KeyError.create({
            conflict: WriteConflict.create({ startTs, conflictTs: latest.commitTs, key: m.key, primary: req.primaryLock }),
          }),
        );
        continue;
      }
      const lock = await txn.getLock(m.key);
      if (lock !== undefined && lock.ts !== startTs) {
        errors.push(KeyError.create({ locked: lock.info(m.key) }));
        continue;
      }
      // Our own lock here means a retried prewrite: rewriting the same lock and value is idempotent.
      if (m.op === Op.Put) txn.putValue(m.key, m.value);
      else txn.deleteValue(m.key); // a Del after a Put of the same key in one request must drop the staged value
      txn.putLock(m.key, new Lock(req.primaryLock, startTs, req.lockTtl, kinds[i]!));
    }
    if (errors.length > 0) txn.discardWrites();
    return PrewriteResponse.create({ errors });
  });
}
