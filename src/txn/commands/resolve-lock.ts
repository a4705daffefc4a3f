/**
 * KvResolveLock: finish every lock a txn left on this store/region, after its primary's status is
 * known: commit them at commit_version (> 0), or roll them back (commit_version == 0).
 */
import { CF_LOCK } from "../../kv/engine/index.js";
import type { ResolveLockRequest } from "../../proto/kvrpcpb.js";
import { Lock } from "../records.js";
import type { KeysResult } from "../errors.js";
import type { CommandRunner } from "../runner.js";
import { requireIssuedTs } from "../bounds.js";
import { requireCommitAfterStart } from "../validate.js";
import { commitKey, rollbackKey } from "./key-actions.js";

/** Keys finished per write (TiKV's RESOLVE_LOCK_BATCH_SIZE): at most ~256 x 8 KiB keys per entry. */
export const RESOLVE_LOCK_BATCH_KEYS = 256;

export async function kvResolveLock(runner: CommandRunner, req: ResolveLockRequest): Promise<KeysResult> {
  const { startVersion: startTs, commitVersion: commitTs } = req;
  requireIssuedTs(runner.bounds, startTs, "start_version");
  if (commitTs !== 0n) {
    requireCommitAfterStart(startTs, commitTs);
    requireIssuedTs(runner.bounds, commitTs, "commit_version");
  }

  // Find the keys first without latches (a snapshot scan of CF lock), then latch exactly those;
  // commitKey/rollbackKey re-read each key under the latch, so a lock that changed meanwhile is
  // handled by their normal rules.
  const keys = await runner.read(req.context, startTs, async (txn) => {
    const found: Buffer[] = [];
    const cursor = txn.reader.iterCF(CF_LOCK);
    try {
      for (await cursor.seek(Buffer.alloc(0)); cursor.valid; await cursor.next()) {
        if (Lock.parse(cursor.value).ts === startTs) found.push(Buffer.from(cursor.key));
      }
    } finally {
      await cursor.close();
    }
    return found;
  });
  // One write per batch of keys, as TiKV does: a large txn's locks in one region would otherwise
  // become a single raft entry of unbounded size. Each key is finished on its own merits (the
  // primary's outcome is known), so batches need not be atomic together.
  for (let i = 0; i < keys.length; i += RESOLVE_LOCK_BATCH_KEYS) {
    const batch = keys.slice(i, i + RESOLVE_LOCK_BATCH_KEYS);
    const error = await runner.write(req.context, batch, startTs, async (txn) => {
      for (const key of batch) {
        const error = commitTs > 0n ? await commitKey(txn, key, commitTs) : await rollbackKey(txn, key);
        if (error !== undefined) {
          txn.discardWrites();
          return error;
        }
      }
      return undefined;
    });
    if (error !== undefined) return { error };
  }
  return {};
}
