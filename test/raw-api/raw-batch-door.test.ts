// The raw batch and range rpcs (issue 18) at the door of a real standalone server over gRPC: bad
// input is answered with a clear error and nothing written; a client generated at run time from
// proto/ (protobufjs, as another language would) calls every new rpc; BatchCommands carries them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StandaloneNode } from "../../src/cli/standalone-node.js";
import { startStandaloneServer } from "../../src/cli/standalone-node.js";
import { BatchedKvRpc } from "../../src/client/kv-batch-rpc.js";
import { TinyKvRpc } from "../../src/client/kv-rpc.js";
import { KvPair } from "../../src/proto/kvrpcpb.js";
import { MAX_BATCH_BYTES, MAX_BATCH_KEYS, MAX_KEY_BYTES } from "../../src/kv/server/limits.js";
import { silentLogger } from "../../src/util/logger.js";
import { tempDir, waitFor } from "../harness/wait.js";
import type { GeneratedTinyKv } from "../harness/generated-client.js";
import { generatedTinyKvClient } from "../harness/generated-client.js";

const b = (s: string) => Buffer.from(s);
const keysOf = (kvs: { key: Buffer }[]) => kvs.map((p) => p.key.toString());

let dir: ReturnType<typeof tempDir>;
let node: StandaloneNode;
let rpc: TinyKvRpc;

beforeAll(async () => {
  dir = tempDir("tinykv-rawbatch-");
  node = await startStandaloneServer({ path: dir.path, addr: "127.0.0.1:0", log: silentLogger });
  rpc = new TinyKvRpc(`127.0.0.1:${node.port}`);
});
afterAll(async () => {
  rpc.close();
  await node.stop();
  dir.cleanup();
});

async function everything(): Promise<string[]> {
  return keysOf((await rpc.rawScan({ startKey: Buffer.alloc(0), limit: 1000 })).kvs);
}

describe("raw batch rpcs refuse bad input whole", () => {
  it("each bad batch gets a clear error and writes nothing", async () => {
    const before = await everything();
    const pair = (key: Buffer, value = b("v")) => KvPair.create({ key, value });
    const cases: [string, Promise<{ error: string }>, RegExp][] = [
      ["empty put batch", rpc.rawBatchPut({ pairs: [] }), /batch is empty/],
      [
        "empty key",
        rpc.rawBatchPut({ pairs: [pair(b("door-a")), pair(Buffer.alloc(0))] }),
        /key 1 of the batch must not be empty/,
      ],
      [
        "key too long",
        rpc.rawBatchPut({ pairs: [pair(b("door-a")), pair(Buffer.alloc(MAX_KEY_BYTES + 1, 1))] }),
        /key 1 of the batch is \d+ bytes; the limit is/,
      ],
      [
        "too many keys",
        rpc.rawBatchPut({ pairs: Array.from({ length: MAX_BATCH_KEYS + 1 }, (_, i) => pair(b(`door-${i}`))) }),
        new RegExp(`batch has ${MAX_BATCH_KEYS + 1} keys; the limit is ${MAX_BATCH_KEYS}`),
      ],
      [
        "too many bytes",
        rpc.rawBatchPut({
          pairs: Array.from({ length: 3 }, (_, i) => pair(b(`door-big-${i}`), Buffer.alloc(MAX_BATCH_BYTES / 2))),
        }),
        /bytes of keys and values; the limit is/,
      ],
      ["unknown cf", rpc.rawBatchPut({ pairs: [pair(b("door-a"))], cf: "nope" }), /column family/],
      ["empty delete batch", rpc.rawBatchDelete({ keys: [] }), /batch is empty/],
      ["empty key to delete", rpc.rawBatchDelete({ keys: [b("door-a"), Buffer.alloc(0)] }), /must not be empty/],
      ["empty get batch", rpc.rawBatchGet({ keys: [] }), /batch is empty/],
      [
        "inverted delete range",
        rpc.rawDeleteRange({ startKey: b("z"), endKey: b("a") }),
        /delete range is empty or inverted/,
      ],
      [
        "inverted reverse scan",
        rpc.rawScan({ startKey: b("a"), endKey: b("z"), limit: 10, reverse: true }),
        /with reverse, start_key is the upper bound/,
      ],
    ];
    for (const [what, answer, message] of cases) expect((await answer).error, what).toMatch(message);
    expect(await everything(), "nothing was written").toEqual(before);
  });
});

describe("a client generated at run time from proto/ calls the raw batch and range rpcs", () => {
  let client: GeneratedTinyKv;
  const call = (method: string, req: object) => client.call(method, req);
  const ctx = { region_id: "1", region_epoch: { conf_ver: "1", version: "1" }, peer: { id: "1", store_id: "1" } };
  const names = (kvs: any[]) => kvs.map((kv: any) => Buffer.from(kv.key).toString());

  beforeAll(() => {
    client = generatedTinyKvClient(`127.0.0.1:${node.port}`);
  });
  afterAll(() => client.close());

  it("RawBatchPut, RawBatchGet, RawScan reverse, RawBatchDelete and RawDeleteRange", async () => {
    const pairs = ["a", "b", "c", "d", "e"].map((k) => ({ key: b(`gen-${k}`), value: b(k.toUpperCase()) }));
    expect((await call("RawBatchPut", { context: ctx, pairs, cf: "default" })).error).toBe("");
    const got = await call("RawBatchGet", { context: ctx, keys: [b("gen-b"), b("gen-missing"), b("gen-d")] });
    expect(got.pairs.map((p: any) => `${Buffer.from(p.key)}=${Buffer.from(p.value)}`)).toEqual(["gen-b=B", "gen-d=D"]);
    const rev = await call("RawScan", {
      context: ctx,
      start_key: b("gen-e"),
      end_key: b("gen-b"),
      limit: 10,
      reverse: true,
    });
    expect(names(rev.kvs), "[end_key, start_key) downward").toEqual(["gen-d", "gen-c", "gen-b"]);
    expect((await call("RawBatchDelete", { context: ctx, keys: [b("gen-a")] })).error).toBe("");
    expect((await call("RawDeleteRange", { context: ctx, start_key: b("gen-c"), end_key: b("gen-e") })).error).toBe("");
    const left = await call("RawScan", { context: ctx, start_key: b("gen-"), end_key: b("gen."), limit: 10 });
    expect(names(left.kvs)).toEqual(["gen-b", "gen-e"]);
  });
});

describe("BatchCommands carries the raw batch and range calls", () => {
  it("answers them as the unary rpcs do, over the stream", async () => {
    const c = new BatchedKvRpc(`127.0.0.1:${node.port}`);
    try {
      await c.rawBatchPut({ pairs: [1, 2, 3].map((i) => KvPair.create({ key: b(`bc-${i}`), value: b(`${i}`) })) });
      await waitFor(() => (c.mode === "stream" ? true : undefined), {
        timeoutMs: 5000,
        message: "the stream never opened",
      });
      const got = await c.rawBatchGet({ keys: [b("bc-1"), b("bc-3")] });
      expect(keysOf(got.pairs)).toEqual(["bc-1", "bc-3"]);
      expect((await c.rawBatchDelete({ keys: [b("bc-1")] })).error).toBe("");
      expect((await c.rawDeleteRange({ startKey: b("bc-3"), endKey: b("bc-4") })).error).toBe("");
      const bad = await c.rawBatchPut({ pairs: [] });
      expect(bad.error).toMatch(/batch is empty/);
      expect(c.mode, "still on the stream").toBe("stream");
      expect(keysOf((await c.rawScan({ startKey: b("bc-"), endKey: b("bc."), limit: 10 })).kvs)).toEqual(["bc-2"]);
    } finally {
      c.close();
    }
  });
});
