/**
 * A scan page of the client's size (1,024 pairs) over a few large values (each within
 * MAX_VALUE_BYTES) would pass gRPC's 16 MiB message: the store refuses a page past its answer
 * budget (RESOURCE_EXHAUSTED) before building it, and the client asks again for fewer pairs. Before,
 * grpc-js failed the call on every retry, so such a scan never succeeded (and the store built the
 * whole answer each time).
 */
import { afterEach, describe, expect, it } from "vitest";
import { KvClient } from "../../src/client/client.js";
import { FakeCluster, peer, region } from "../lab3b-multiraft/client-fake-store.js";

let cluster: FakeCluster | undefined;
let client: KvClient | undefined;

afterEach(async () => {
  client?.close();
  client = undefined;
  await cluster?.stop();
  cluster = undefined;
});

const MIB = 1024 * 1024;

describe("scans over large values", () => {
  it("returns every pair of three 7 MiB values", async () => {
    const c = (cluster = await FakeCluster.start(1));
    await c.addRegion(region(10n, "", "", [peer(11n, 1n)]), peer(11n, 1n));
    const kv = (client = await KvClient.connect({ scheduler: c.scheduler.addr, timeoutMs: 3_000 }));

    const keys = ["big1", "big2", "big3"];
    const t = await kv.begin();
    for (const [i, k] of keys.entries()) t.put(k, Buffer.alloc(7 * 1024 * 1024, i + 1));
    await t.commit();

    const r = await kv.begin();
    for (const k of keys) expect((await r.get(k))?.length, `${k} reads back alone`).toBe(7 * 1024 * 1024);
    const scanned = await r.scan("", "", 10).then(
      (pairs) => pairs.map((p) => `${p.key.toString()}:${p.value.length}`),
      (e: Error) => `${e.name}: ${e.message}`,
    );
    expect(scanned).toEqual(keys.map((k) => `${k}:${7 * 1024 * 1024}`));
  }, 60_000);

  it("a raw scan, forward and reverse, returns every pair of three 7 MiB values", async () => {
    const c = (cluster = await FakeCluster.start(1));
    await c.addRegion(region(10n, "", "", [peer(11n, 1n)]), peer(11n, 1n));
    const kv = (client = await KvClient.connect({ scheduler: c.scheduler.addr, timeoutMs: 3_000 }));
    const keys = ["raw1", "raw2", "raw3"];
    for (const [i, k] of keys.entries()) await kv.put(k, Buffer.alloc(7 * MIB, i + 1));
    const describe = (pairs: { key: Buffer; value: Buffer }[]) => pairs.map((p) => `${p.key}:${p.value.length}`);
    expect(describe(await kv.scan("", "", 10))).toEqual(keys.map((k) => `${k}:${7 * MIB}`));
    expect(describe(await kv.scan("", "", 10, "", { reverse: true }))).toEqual(
      [...keys].reverse().map((k) => `${k}:${7 * MIB}`),
    );
  }, 60_000);
});
