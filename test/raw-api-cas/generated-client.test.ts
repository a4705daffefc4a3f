// Issue 18's calls from a client generated at run time from proto/ (protobufjs via proto-loader,
// as a user of another language would build one): RawCompareAndSwap, RawGetKeyTTL, RawPut and
// RawBatchPut with ttls, and a read whose Context asks for a replica read or a stale read.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StandaloneNode } from "../../src/cli/standalone-node.js";
import { startStandaloneServer } from "../../src/cli/standalone-node.js";
import { silentLogger } from "../../src/util/logger.js";
import { tempDir } from "../harness/wait.js";
import type { GeneratedTinyKv } from "../harness/generated-client.js";
import { generatedTinyKvClient } from "../harness/generated-client.js";

const b = (s: string) => Buffer.from(s);

describe("CAS, TTL and read options from a client generated from proto/", () => {
  let dir: ReturnType<typeof tempDir>;
  let node: StandaloneNode;
  let client: GeneratedTinyKv;
  const call = (method: string, req: object) => client.call(method, req);

  beforeAll(async () => {
    dir = tempDir("tinykv-gen-cas-");
    node = await startStandaloneServer({ path: dir.path, addr: "127.0.0.1:0", log: silentLogger });
    client = generatedTinyKvClient(`127.0.0.1:${node.port}`);
  });
  afterAll(async () => {
    client.close();
    await node.stop();
    dir.cleanup();
  });

  it("RawCompareAndSwap: must-not-exist, then a swap from the value it holds, then a refused one", async () => {
    const first = await call("RawCompareAndSwap", { key: b("gen-cas"), value: b("1"), previous_not_exist: true });
    expect(first).toMatchObject({ error: "", succeed: true, previous_not_exist: true });
    const second = await call("RawCompareAndSwap", { key: b("gen-cas"), value: b("2"), previous_value: b("1") });
    expect(second).toMatchObject({ succeed: true, previous_not_exist: false });
    expect(second.previous_value.toString()).toBe("1");
    const stale = await call("RawCompareAndSwap", { key: b("gen-cas"), value: b("3"), previous_value: b("1") });
    expect(stale.succeed, "a swap from a value the key no longer holds").toBe(false);
    expect(stale.previous_value.toString()).toBe("2");
    expect((await call("RawGet", { key: b("gen-cas") })).value.toString()).toBe("2");
  });

  it("RawPut and RawBatchPut with ttls, read back by RawGetKeyTTL; a ttls list of the wrong length is refused", async () => {
    expect((await call("RawPut", { key: b("gen-ttl"), value: b("v"), ttl: 600 })).error).toBe("");
    const one = await call("RawGetKeyTTL", { key: b("gen-ttl") });
    expect(Number(one.ttl)).toBeGreaterThan(590);
    expect(Number(one.ttl)).toBeLessThanOrEqual(600);
    const pairs = [
      { key: b("gen-bt-a"), value: b("a") },
      { key: b("gen-bt-b"), value: b("b") },
    ];
    expect((await call("RawBatchPut", { pairs, ttls: [300, 0] })).error).toBe("");
    expect(Number((await call("RawGetKeyTTL", { key: b("gen-bt-a") })).ttl)).toBeGreaterThan(290);
    expect(await call("RawGetKeyTTL", { key: b("gen-bt-b") }), "ttl 0: never expires").toMatchObject({
      ttl: "0",
      not_found: false,
    });
    const wrong = await call("RawBatchPut", { pairs: [{ key: b("gen-bt-c"), value: b("c") }], ttls: [1, 2] });
    expect(wrong.error).toMatch(/ttls has 2 entries for 1 pairs/);
    expect((await call("RawGet", { key: b("gen-bt-c") })).not_found, "nothing written").toBe(true);
  });

  it("a Context with replica_read set is accepted; a raw read with stale_read is refused in error", async () => {
    const replica = await call("RawGet", { key: b("gen-cas"), context: { replica_read: true } });
    expect(replica.value.toString()).toBe("2");
    const stale = await call("RawGet", { key: b("gen-cas"), context: { stale_read: true } });
    expect(stale.error).toMatch(/stale/i);
  });
});
