/**
 * A large transaction's prewrite on one store, as the client sends it: TXN_BATCH_KEYS-key
 * batches, TXN_BATCHES_IN_FLIGHT at once, through the real txn handlers on a real LevelDB
 * (StandaloneStorage), then its commit. Prints the time of each phase; run it at
 * two sizes to see whether the cost per key grows with the transaction.
 *
 *   node dist/bench/big-txn.js [--keys 30000] [--value-size 70]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { TXN_BATCH_KEYS, TXN_BATCHES_IN_FLIGHT, settleLimited } from "../src/client/batches.js";
import { TxnHandlers } from "../src/kv/server/index.js";
import { StandaloneStorage } from "../src/kv/storage/index.js";
import { Op } from "../src/proto/kvrpcpb.js";

const { values: a } = parseArgs({
  options: { keys: { type: "string", default: "30000" }, "value-size": { type: "string", default: "70" } },
});
const keys = Number(a.keys);
const valueSize = Number(a["value-size"]);
if (!Number.isSafeInteger(keys) || keys < 1 || !Number.isSafeInteger(valueSize) || valueSize < 0) {
  console.error("--keys must be a positive integer and --value-size a non-negative one");
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), "tinykv-bench-big-txn-"));
const storage = new StandaloneStorage(dir);
await storage.start();
const handlers = new TxnHandlers(storage);
const keyOf = (i: number) => Buffer.from(`key-${String(i).padStart(8, "0")}`);
const primary = keyOf(0);
const startTs = BigInt(Date.now()) << 18n;
const value = Buffer.alloc(valueSize, 0x76);
const batches: number[][] = [];
for (let i = 0; i < keys; i += TXN_BATCH_KEYS)
  batches.push(Array.from({ length: Math.min(TXN_BATCH_KEYS, keys - i) }, (_, j) => i + j));

const t0 = performance.now();
const prewrite = await settleLimited(batches, TXN_BATCHES_IN_FLIGHT, async (batch) => {
  const resp = await handlers.kvPrewrite({
    context: undefined,
    mutations: batch.map((i) => ({ op: Op.Put, key: keyOf(i), value })),
    primaryLock: primary,
    startVersion: startTs,
    lockTtl: 60_000n,
  });
  if (resp.errors.length > 0 || resp.regionError)
    throw new Error(`prewrite refused: ${JSON.stringify(resp.errors[0] ?? resp.regionError)}`);
});
const prewriteMs = performance.now() - t0;
const failed = prewrite.find((r) => r.status === "rejected");
if (failed) throw (failed as PromiseRejectedResult).reason;
const t1 = performance.now();
await settleLimited(batches, TXN_BATCHES_IN_FLIGHT, (batch) =>
  handlers.kvCommit({ context: undefined, keys: batch.map(keyOf), startVersion: startTs, commitVersion: startTs + 1n }),
);
const commitMs = performance.now() - t1;
console.log(
  `keys ${keys}, value ${valueSize} B: prewrite ${prewriteMs.toFixed(0)} ms, commit ${commitMs.toFixed(0)} ms (${(((prewriteMs + commitMs) / keys) * 1000).toFixed(0)} us/key)`,
);
await storage.stop();
rmSync(dir, { recursive: true, force: true });
