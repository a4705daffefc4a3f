/** KvCommit, Percolator's second phase: turn this txn's locks on the given keys into write records. */
import type { CommitRequest } from "../../proto/kvrpcpb.js";
import type { KeysResult } from "../errors.js";
import type { CommandRunner } from "../runner.js";
import { requireIssuedTs } from "../bounds.js";
import { requireCommitAfterStart, requireKeys } from "../validate.js";
import { commitKey } from "./key-actions.js";
import { uniqueKeys } from "./unique-keys.js";

export async function kvCommit(runner: CommandRunner, req: CommitRequest): Promise<KeysResult> {
  requireIssuedTs(runner.bounds, req.startVersion, "start_version");
  requireCommitAfterStart(req.startVersion, req.commitVersion);
  requireIssuedTs(runner.bounds, req.commitVersion, "commit_version");
  requireKeys(req.keys, "keys");
  const keys = uniqueKeys(req.keys);
  if (keys.length === 0) return {};

  return runner.write(req.context, keys, req.startVersion, async (txn) => {
    for (const key of keys) {
      const error = await commitKey(txn, key, req.commitVersion);
      if (error !== undefined) {
        // All or nothing per request: the client retries or aborts the whole commit.
        txn.discardWrites();
        return { error };
      }
    }
    return {};
  });
}
