import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StandaloneNode } from "../../src/cli/standalone-node.js";
import { startStandaloneServer } from "../../src/cli/standalone-node.js";
import { TinyKvRpc } from "../../src/client/kv-rpc.js";
import type { CfName } from "../../src/kv/engine/index.js";
import { RAW_CF_DEFAULT, RAW_CF_TTL_DEFAULT } from "../../src/kv/engine/index.js";
import { silentLogger } from "../../src/util/logger.js";
import { tempDir, waitFor } from "../harness/wait.js";

/** Raw CAS and TTL on a standalone store over gRPC: no raft log orders writes here, per-key latches do. */
describe("raw cas and ttl on a standalone store", () => {
  let dir: ReturnType<typeof tempDir>;
  let node: StandaloneNode;
  const rpcs: TinyKvRpc[] = [];
  const b = (s: string) => Buffer.from(s);

  beforeAll(async () => {
    dir = tempDir();
    node = await startStandaloneServer({
      path: dir.path,
      addr: "127.0.0.1:0",
      log: silentLogger,
      rawTtlCheckTickMs: 100,
    });
    for (let i = 0; i < 8; i++) rpcs.push(new TinyKvRpc(`127.0.0.1:${node.port}`));
  });
  afterAll(async () => {
    for (const r of rpcs) r.close();
    await node.stop();
    dir.cleanup();
  });

  const cas = (rpc: TinyKvRpc, key: string, value: string, expected: Buffer | undefined) =>
    rpc.rawCompareAndSwap({
      key: b(key),
      value: b(value),
      previousNotExist: expected === undefined,
      previousValue: expected ?? Buffer.alloc(0),
    });

  async function storedKeys(cf: CfName): Promise<number> {
    const reader = await node.storage.reader(undefined);
    const cursor = reader.iterCF(cf);
    try {
      await cursor.seek(Buffer.alloc(0));
      let n = 0;
      for (; cursor.valid; await cursor.next()) n++;
      return n;
    } finally {
      await cursor.close();
      await reader.close();
    }
  }

  it("8 clients incrementing a counter by cas, while plain puts hit other keys, end exact", async () => {
    const PER_CLIENT = 6;
    const worker = async (rpc: TinyKvRpc, id: number) => {
      let current = (await rpc.rawGet({ key: b("counter") })).value;
      let done = 0;
      while (done < PER_CLIENT) {
        const n = current.length === 0 ? 0 : Number(current.toString());
        const r = await cas(rpc, "counter", String(n + 1), current.length === 0 ? undefined : current);
        expect(r.error).toBe("");
        if (r.succeed) {
          done++;
          current = b(String(n + 1));
        } else current = r.previousNotExist ? Buffer.alloc(0) : r.previousValue;
        await rpc.rawPut({ key: b(`noise-${id}`), value: b(String(done)) });
      }
    };
    await Promise.all(rpcs.map((rpc, i) => worker(rpc, i)));
    expect((await rpcs[0]!.rawGet({ key: b("counter") })).value.toString()).toBe(String(8 * PER_CLIENT));
  });

  it("an expired key is invisible at once and the background sweep removes it from the engine", async () => {
    const before = await storedKeys(RAW_CF_DEFAULT);
    for (let i = 0; i < 20; i++) await rpcs[0]!.rawPut({ key: b(`exp-${i}`), value: b("x"), ttl: 1n });
    await rpcs[0]!.rawPut({ key: b("exp-kept"), value: b("x"), ttl: 1n });
    await rpcs[0]!.rawPut({ key: b("exp-kept"), value: b("plain") });
    expect(await storedKeys(RAW_CF_TTL_DEFAULT)).toBe(20);
    await waitFor(async () => (await rpcs[0]!.rawGet({ key: b("exp-0") })).notFound, {
      timeoutMs: 10_000,
      message: "a key with a 1 s ttl was still readable after 10 s",
    });
    await waitFor(async () => (await storedKeys(RAW_CF_TTL_DEFAULT)) === 0, {
      timeoutMs: 10_000,
      message: "the sweep never removed the expiries",
    });
    expect(await storedKeys(RAW_CF_DEFAULT), "only the key put again without ttl stays").toBe(before + 1);
    expect((await rpcs[0]!.rawGet({ key: b("exp-kept") })).value.toString()).toBe("plain");
  });

  it("refuses bad input in error, writing nothing", async () => {
    const r = await rpcs[0]!.rawCompareAndSwap({ key: Buffer.alloc(0), value: b("v"), previousNotExist: true });
    expect(r.error).toContain("key must not be empty");
    const ttl = await rpcs[0]!.rawPut({ key: b("k"), value: b("v"), ttl: 10n ** 12n });
    expect(ttl.error).toContain("out of range");
    const cf = await rpcs[0]!.rawGetKeyTtl({ key: b("k"), cf: "nope" });
    expect(cf.error).toContain("unknown column family");
    expect((await rpcs[0]!.rawGet({ key: b("k") })).notFound).toBe(true);
  });
});
