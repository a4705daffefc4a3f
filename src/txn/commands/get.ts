/** KvGet: the value of one key at a snapshot timestamp, unless an older lock may hide a newer commit. */
import type { GetRequest } from "../../proto/kvrpcpb.js";
import type { TxnKeyError } from "../errors.js";
import type { CommandRunner } from "../runner.js";
import { requireKey, requireTs } from "../validate.js";

/** The visible value (undefined: not found), or the lock that keeps the read from deciding. */
export type GetResult = { value: Buffer | undefined } | { error: TxnKeyError };

export async function kvGet(runner: CommandRunner, req: GetRequest): Promise<GetResult> {
  requireKey(req.key, "key");
  requireTs(req.version, "version");
  return runner.read(req.context, req.version, async (txn) => {
    const lock = await txn.getLock(req.key);
    if (lock?.blocksRead(req.key, req.version)) {
      return { error: { kind: "KeyIsLocked", key: req.key, lock } };
    }
    return { value: await txn.getValue(req.key) };
  });
}
