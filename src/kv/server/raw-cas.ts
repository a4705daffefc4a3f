import { parseClientCf } from "../engine/index.js";
import type { RawKeyspace } from "../storage/index.js";
import { InvalidArgumentError } from "../storage/index.js";
import type { RawCASRequest } from "../../proto/kvrpcpb.js";
import { RawCASResponse } from "../../proto/kvrpcpb.js";
import { rawFailure } from "./raw.js";
import { checkKey, checkValue } from "./validate.js";

/**
 * RawCompareAndSwap (issue 18): TiKV's rpc, linearizable with every other raw write without a
 * mode flag, because the comparison and the write are one raft entry's apply (the raftstore's
 * conditional-write.ts; the standalone storage serializes them per key). An expired value counts
 * as absent. The previous value is always answered, whether or not the swap happened.
 */
export class RawCasHandlers {
  constructor(private readonly keyspace: RawKeyspace) {}

  async rawCompareAndSwap(req: RawCASRequest): Promise<RawCASResponse> {
    try {
      const cf = parseClientCf(req.cf);
      checkKey(req.key);
      if (!req.delete) checkValue(req.value);
      checkValue(req.previousValue);
      if (req.delete && req.ttl !== 0n) throw new InvalidArgumentError("a compare-and-delete takes no ttl");
      const outcome = await this.keyspace.compareAndSwap(req.context, {
        cf,
        key: req.key,
        expected: req.previousNotExist ? undefined : req.previousValue,
        value: req.delete ? undefined : req.value,
        ttlSeconds: req.ttl,
      });
      return RawCASResponse.create({
        succeed: outcome.succeed,
        previousNotExist: outcome.previous === undefined,
        previousValue: outcome.previous ?? Buffer.alloc(0),
      });
    } catch (err) {
      return RawCASResponse.create(rawFailure(err));
    }
  }
}
