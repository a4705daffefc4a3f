/** KvBatchRollback: abort a txn on the given keys (client-initiated, e.g. after a prewrite conflict). */
import type { BatchRollbackRequest } from "../../proto/kvrpcpb.js";
import type { KeysResult } from "../errors.js";
import type { CommandRunner } from "../runner.js";
import { requireIssuedTs } from "../bounds.js";
import { requireKeys } from "../validate.js";
import { rollbackKey } from "./key-actions.js";
import { uniqueKeys } from "./unique-keys.js";

export async function kvBatchRollback(runner: CommandRunner, req: BatchRollbackRequest): Promise<KeysResult> {
  requireIssuedTs(runner.bounds, req.startVersion, "start_version");
  requireKeys(req.keys, "keys");
  const keys = uniqueKeys(req.keys);
  if (keys.length === 0) return {};

  return runner.write(req.context, keys, req.startVersion, async (txn) => {
    for (const key of keys) {
      const error = await rollbackKey(txn, key);
      if (error !== undefined) {
        // A committed key means the txn is committed: rolling back its other keys would tear it.
        txn.discardWrites();
        return { error };
      }
    }
    return {};
  });
}
