// Scans with a limit over the servers' per-request maximum (100,000) and more pairs than one
// request carries: the client pages through each region.
import { afterEach, describe, expect, it } from "vitest";
import { KvClient } from "../../src/client/client.js";
import { FakeCluster, peer, region } from "./client-fake-store.js";

let cluster: FakeCluster | undefined;
let client: KvClient | undefined;

afterEach(async () => {
  client?.close();
  client = undefined;
  await cluster?.stop();
  cluster = undefined;
});

// Raw keys under "r", transactional ones under "t": a raw scan of CF default must not meet the
// transactional values stored there.
const rawKey = (i: number) => `r${String(i).padStart(5, "0")}`;
const txnKey = (i: number) => `t${String(i).padStart(5, "0")}`;

describe("client: paged scans", () => {
  it("raw and transactional scans return every pair across pages and regions, limit and end honoured", async () => {
    const n = 1500;
    const c = (cluster = await FakeCluster.start(2));
    await c.addRegion(region(10n, "", rawKey(1200), [peer(11n, 1n)]), peer(11n, 1n));
    await c.addRegion(region(20n, rawKey(1200), txnKey(1200), [peer(21n, 2n)]), peer(21n, 2n));
    await c.addRegion(region(30n, txnKey(1200), "", [peer(31n, 1n)]), peer(31n, 1n));
    const kv = (client = await KvClient.connect({ scheduler: c.scheduler.addr, timeoutMs: 20_000 }));

    await kv.batchPut(Array.from({ length: n }, (_, i) => ({ key: rawKey(i), value: `raw${i}` })));
    const t = await kv.begin();
    for (let i = 0; i < n; i++) t.put(txnKey(i), `txn${i}`);
    await t.commit();

    const raw = await kv.scan("r", "s", 150_000);
    expect(raw.map((p) => p.key.toString())).toEqual(Array.from({ length: n }, (_, i) => rawKey(i)));
    expect((await kv.scan(rawKey(100), rawKey(1400), 150_000)).length, "end is exclusive").toBe(1300);
    expect((await kv.scan("r", "s", 1100)).length).toBe(1100);

    const r = await kv.begin();
    const txn = await r.scan("", "", 150_000);
    expect(txn.map((p) => p.key.toString())).toEqual(Array.from({ length: n }, (_, i) => txnKey(i)));
    expect(txn[n - 1]!.value.toString()).toBe(`txn${n - 1}`);
    expect((await r.scan(txnKey(100), txnKey(1400), 150_000)).length, "end is exclusive").toBe(1300);
    expect((await r.scan("", "", 1100)).length).toBe(1100);
  }, 60_000);
});
