/** KvScan: up to `limit` visible key/value pairs from start_key at a snapshot ts; a blocking lock is reported per key. */
import type { ScanRequest } from "../../proto/kvrpcpb.js";
import { AnswerTooLargeError } from "../../kv/storage/index.js";
import type { TxnKeyError } from "../errors.js";
import type { CommandRunner } from "../runner.js";
import { MvccScanner } from "../scanner.js";
import { requireTs } from "../validate.js";

/** One visible key: its value, or the lock that keeps the scan from deciding it. */
export type ScanItem = { key: Buffer; value: Buffer } | { key: Buffer; error: TxnKeyError };

/** `maxBytes`: the answer's budget of keys and values; a scan that would pass it is refused (AnswerTooLargeError). */
export async function kvScan(runner: CommandRunner, req: ScanRequest, maxBytes = Infinity): Promise<ScanItem[]> {
  requireTs(req.version, "version");
  if (req.limit === 0) return [];
  return runner.read(req.context, req.version, async (txn) => {
    const scanner = new MvccScanner(txn.reader, req.version, req.startKey);
    const pairs: ScanItem[] = [];
    let bytes = 0;
    try {
      while (pairs.length < req.limit) {
        const item = await scanner.next();
        if (item === undefined) break;
        bytes += item.key.length + (item.value?.length ?? 0);
        if (bytes > maxBytes && pairs.length > 0) throw new AnswerTooLargeError("KvScan", pairs.length + 1, maxBytes);
        pairs.push(
          item.lock !== undefined
            ? { key: item.key, error: { kind: "KeyIsLocked", key: item.key, lock: item.lock } }
            : { key: item.key, value: item.value },
        );
      }
    } finally {
      await scanner.close();
    }
    return pairs;
  });
}
