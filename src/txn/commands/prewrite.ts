/**
 * KvPrewrite, Percolator's first phase: lock every key of the request and stage its value at
 * start_ts. Refused per key when a newer write exists (write conflict) or another txn holds a lock;
 * if any key is refused nothing is written, so a request either locks all its keys or none.
 */
import type { PrewriteRequest } from "../../proto/kvrpcpb.js";
import { InvalidArgumentError } from "../../kv/storage/index.js";
import type { TxnKeyError } from "../errors.js";
import { WriteKind, writeKindFromOp } from "../records.js";
import type { CommandRunner } from "../runner.js";
import { requireIssuedTs, requireLockTtl } from "../bounds.js";
import { requireKey } from "../validate.js";
import { prewriteKey } from "./key-actions.js";

/** Every key refused, in mutation order; empty when the request locked all its keys. */
export interface PrewriteResult {
  errors: TxnKeyError[];
}

export async function kvPrewrite(runner: CommandRunner, req: PrewriteRequest): Promise<PrewriteResult> {
  const { mutations, startVersion: startTs } = req;
  if (mutations.length === 0) return { errors: [] };
  requireIssuedTs(runner.bounds, startTs, "start_version");
  requireLockTtl(runner.bounds, req.lockTtl, "lock_ttl");
  requireKey(req.primaryLock, "primary_lock");
  const kinds = mutations.map((m, i) => {
    requireKey(m.key, `mutations[${i}].key`);
    return writeKindFromOp(m.op);
  });
  if (kinds.includes(WriteKind.Rollback)) throw new InvalidArgumentError("mutation op Rollback cannot be prewritten");

  return runner.write(
    req.context,
    mutations.map((m) => m.key),
    startTs,
    async (txn) => {
      const errors: TxnKeyError[] = [];
      for (const [i, m] of mutations.entries()) {
        const error = await prewriteKey(txn, m, { primary: req.primaryLock, ttl: req.lockTtl, kind: kinds[i]! });
        if (error !== undefined) errors.push(error);
      }
      if (errors.length > 0) txn.discardWrites();
      return { errors };
    },
  );
}
