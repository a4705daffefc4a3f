// RawScan bounds the number of pairs (limit <= 100,000) but not their bytes: with
// values up to 8 MiB the handler (raw.ts rawScan/collect) reads every pair up to `limit` into one
// answer — up to 100,000 x 8 MiB held per request — and only then does grpc-js find that it
// cannot be sent, so the caller gets a bare RESOURCE_EXHAUSTED "Sent message larger than max"
// after the store did all the work. RawBatchGet refuses the same answer in `error` as soon as its
// values pass MAX_BATCH_GET_ANSWER_BYTES; RawScan should stop reading there too.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { StandaloneNode } from "../../src/cli/standalone-node.js";
import { startStandaloneServer } from "../../src/cli/standalone-node.js";
import { TinyKvRpc } from "../../src/client/kv-rpc.js";
import { MAX_VALUE_BYTES } from "../../src/kv/server/limits.js";
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

it("a raw scan whose values would not fit one answer is refused by the store (RESOURCE_EXHAUSTED, answer too large), not by the transport", async () => {
  const rpc = new TinyKvRpc(addr, 20_000, { "grpc.max_receive_message_length": 256 << 20 });
  try {
    for (const i of [0, 1, 2]) {
      const put = await rpc.rawPut({ key: Buffer.from(`s/${i}`), value: Buffer.alloc(MAX_VALUE_BYTES, 0x61 + i) });
      expect(put.error).toBe("");
    }
    const answer = await rpc
      .rawScan({ startKey: Buffer.from("s/"), endKey: Buffer.from("s0"), limit: 10 })
      .then((r) => ({ error: r.error, pairs: r.kvs.length }))
      .catch((e: { code?: number; details?: string }) => ({ status: `${e.code} ${e.details}` }));
    expect(answer).toMatchObject({
      status: expect.stringMatching(new RegExp(`^${grpc.status.RESOURCE_EXHAUSTED} RawScan answer too large`)),
    });
    // A scan that fits is answered as before.
    const fits = await rpc.rawScan({ startKey: Buffer.from("s/"), endKey: Buffer.from("s0"), limit: 1 });
    expect(fits.error).toBe("");
    expect(fits.kvs.map((kv) => kv.key.toString())).toEqual(["s/0"]);
  } finally {
    rpc.close();
  }
}, 60_000);
