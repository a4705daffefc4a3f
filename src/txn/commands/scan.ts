/** KvScan: up to `limit` visible key/value pairs from start_key at a snapshot ts; a blocking lock is reported per key. */
import { KeyError, KvPair, ScanResponse, type ScanRequest } from "../../proto/kvrpcpb.js";
import type { CommandRunner } from "../runner.js";
import { MvccScanner } from "../scanner.js";
import { requireTs } from "../validate.js";

export async function kvScan(runner: CommandRunner, req: ScanRequest): Promise<ScanResponse> {
  requireTs(req.version, "version");
  if (req.limit === 0) return ScanResponse.create();
  return runner.read(req.context, req.version, async (txn) => {
    const scanner = new MvccScanner(txn.reader, req.version, req.startKey);
    const pairs: KvPair[] = [];
    try {
      while (pairs.length < req.limit) {
        const item = await scanner.next();
        if (item === undefined) break;
        pairs.push(
          item.lock !== undefined
            ? KvPair.create({ key: item.key, error: KeyError.create({ locked: item.lock.info(item.key) }) })
            : KvPair.create({ key: item.key, value: item.value }),
        );
      }
    } finally {
      await scanner.close();
    }
    return ScanResponse.create({ pairs });
  });
}
