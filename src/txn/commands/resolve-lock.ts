/**
 * KvResolveLock: finish every lock a txn left on this store/region, after its primary's status is
 * known: commit them at commit_version (> 0), or roll them back (commit_version == 0).
 */
import { CF_LOCK } from "../../kv/engine/index.js";
import { ResolveLockResponse, type ResolveLockRequest } from "../../proto/kvrpcpb.js";
import { Lock } from "../records.js";
import type { CommandRunner } from "../runner.js";
import { requireCommitAfterStart, requireTs } from "../validate.js";
import { commitKey, rollbackKey } from "./key-actions.js";

export async function kvResolveLock(runner: CommandRunner, req: ResolveLockRequest): Promise<ResolveLockResponse> {
  const { startVersion: startTs, commitVersion: commitTs } = req;
  requireTs(startTs, "start_version");
  if (commitTs !== 0n) requireCommitAfterStart(startTs, commitTs);

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
  if (keys.length === 0) return ResolveLockResponse.create();

  return runner.write(req.context, keys, startTs, async (txn) => {
    for (const key of keys) {
      const error = commitTs > 0n ? await commitKey(txn, key, commitTs) : await rollbackKey(txn, key);
      if (error !== undefined) {
        txn.discardWrites();
        return ResolveLockResponse.create({ error });
      }
    }
    return ResolveLockResponse.create();
  });
}
