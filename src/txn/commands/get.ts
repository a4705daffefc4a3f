/** KvGet: the value of one key at a snapshot timestamp, unless an older lock may hide a newer commit. */
import { GetResponse, KeyError, type GetRequest } from "../../proto/kvrpcpb.js";
import type { CommandRunner } from "../runner.js";
import { requireKey, requireTs } from "../validate.js";

export async function kvGet(runner: CommandRunner, req: GetRequest): Promise<GetResponse> {
  requireKey(req.key, "key");
  requireTs(req.version, "version");
  return runner.read(req.context, req.version, async (txn) => {
    const lock = await txn.getLock(req.key);
    if (lock !== undefined && lock.blocksRead(req.key, req.version)) {
      return GetResponse.create({ error: KeyError.create({ locked: lock.info(req.key) }) });
    }
    const value = await txn.getValue(req.key);
    return value === undefined ? GetResponse.create({ notFound: true }) : GetResponse.create({ value });
  });
}
