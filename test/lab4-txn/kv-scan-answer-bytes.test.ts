// KvScan, like RawScan, bounds its pairs by count (limit <= 100,000) and not by
// bytes: over committed values of up to 8 MiB it reads every pair up to `limit` into one answer
// (src/txn/commands/scan.ts) and only grpc-js then finds it cannot be sent: the caller gets a bare
// RESOURCE_EXHAUSTED "Sent message larger than max" after the store read up to 100,000 x 8 MiB.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { StandaloneNode } from "../../src/cli/standalone-node.js";
import { startStandaloneServer } from "../../src/cli/standalone-node.js";
import { TinyKvRpc } from "../../src/client/kv-rpc.js";
import { MAX_VALUE_BYTES } from "../../src/kv/server/limits.js";
import { Op } from "../../src/proto/kvrpcpb.js";
import { silentLogger } from "../../src/util/logger.js";
import { tempDir } from "../harness/wait.js";

let dir: ReturnType<typeof tempDir>;
let node: StandaloneNode;
let addr: string;
beforeAll(async () => {
  dir = tempDir();
  node = await startStandaloneServer({ path: dir.path, addr: "127.0.0.1:0", log: silentLogger });
  addr = `127.0.0.1:${node.port}`;
});
afterAll(async () => {
  await node.stop();
  dir.cleanup();
});

it("a KvScan whose values would not fit one answer is refused by the store (RESOURCE_EXHAUSTED, answer too large), not by the transport", async () => {
  const rpc = new TinyKvRpc(addr, 20_000, { "grpc.max_receive_message_length": 256 << 20 });
  try {
    let ts = BigInt(Date.now()) << 18n;
    for (const i of [0, 1, 2]) {
      const key = Buffer.from(`t/${i}`);
      const value = Buffer.alloc(MAX_VALUE_BYTES, 0x61 + i);
      const start = ts++;
      const pre = await rpc.kvPrewrite({
        mutations: [{ op: Op.Put, key, value }],
        primaryLock: key,
        startVersion: start,
        lockTtl: 3000n,
      });
      expect(pre.errors).toEqual([]);
      const commit = await rpc.kvCommit({ startVersion: start, keys: [key], commitVersion: ts++ });
      expect(commit.error).toBeUndefined();
    }
    const outcome = await rpc
      .kvScan({ startKey: Buffer.from("t/"), limit: 10, version: ts + 10n })
      .then((r) => `answered ${r.pairs.length} pairs`)
      .catch((e: { code?: number; details?: string }) => `${e.code} ${e.details}`);
    expect(outcome).toMatch(new RegExp(`^${grpc.status.RESOURCE_EXHAUSTED} KvScan answer too large`));
    const fits = await rpc.kvScan({ startKey: Buffer.from("t/"), limit: 1, version: ts + 10n });
    expect(fits.pairs.map((p) => p.key.toString())).toEqual(["t/0"]);
  } finally {
    rpc.close();
  }
}, 60_000);
