// A large transaction is sent in requests of bounded size: per region AND by bytes, so no request
// (and no raft entry made from it) grows with the transaction. The case is 170,000 keys,
// ~13.6 MiB, in one transaction; that takes over a minute on a loaded 2-core machine (the server
// does two engine reads per key per phase), so by default the same ~13.6 MiB comes as 10,000 keys.
// TINYKV_TXN_KEYS=170000 runs the shape.
import { afterEach, describe, expect, it } from "vitest";
import { KvClient } from "../../src/client/client.js";
import { TXN_BATCH_BYTES, TXN_BATCH_KEYS } from "../../src/client/batches.js";
import { CF_LOCK } from "../../src/kv/engine/index.js";
import { dumpCf } from "../lab4-txn/txn-server.js";
import { FakeCluster, peer, region } from "./client-fake-store.js";

/** The servers' default raftEntryMaxSize: an entry over it is refused. */
const RAFT_ENTRY_MAX_BYTES = 8 * 1024 * 1024;

let cluster: FakeCluster | undefined;
let client: KvClient | undefined;

afterEach(async () => {
  client?.close();
  client = undefined;
  await cluster?.stop();
  cluster = undefined;
});

const KEYS = Number(process.env.TINYKV_TXN_KEYS ?? 10_000);
const TXN_BYTES = 13.6 * 1024 * 1024;
const keyOf = (i: number) => `key-${String(i).padStart(6, "0")}`;
const valueFor = (i: number) => `value-${i}-`.padEnd(Math.round(TXN_BYTES / KEYS) - 10, "x");

describe("client: a ~13.6 MiB transaction", () => {
  it(
    `of ${KEYS} keys is prewritten and committed in requests under the batch size, and reads back whole`,
    async () => {
      const n = KEYS;
      const c = (cluster = await FakeCluster.start(2));
      await c.addRegion(region(10n, "", keyOf(n / 2), [peer(11n, 1n)]), peer(11n, 1n));
      await c.addRegion(region(20n, keyOf(n / 2), "", [peer(21n, 2n)]), peer(21n, 2n));
      // The 170,000-key shape is ~700,000 engine reads on one event loop: on a loaded machine one
      // request can take longer than a default rpc deadline, which is not what this test measures.
      const big = n > 50_000;
      const kv = (client = await KvClient.connect({
        scheduler: c.scheduler.addr,
        timeoutMs: big ? 500_000 : 60_000,
        rpcTimeoutMs: big ? 240_000 : 30_000,
      }));

      const t = await kv.begin();
      for (let i = 0; i < n; i++) t.put(keyOf(i), valueFor(i));
      await t.commit();

      const served = c.stores.flatMap((s) => s.servedOk());
      const prewrites = served.filter((s) => s.rpc === "kvPrewrite");
      const commits = served.filter((s) => s.rpc === "kvCommit");
      expect(
        prewrites.reduce((sum, p) => sum + p.keys.length, 0),
        "every key prewritten once",
      ).toBe(n);
      expect(
        commits.reduce((sum, p) => sum + p.keys.length, 0),
        "every key committed once",
      ).toBe(n);
      expect(Math.max(...prewrites.map((p) => p.bytes)), "largest prewrite request").toBeLessThanOrEqual(
        TXN_BATCH_BYTES,
      );
      expect(Math.max(...commits.map((p) => p.bytes)), "largest commit request").toBeLessThanOrEqual(TXN_BATCH_BYTES);
      expect(
        Math.max(...prewrites.map((p) => p.keys.length), ...commits.map((p) => p.keys.length)),
        "most keys in one request",
      ).toBeLessThanOrEqual(TXN_BATCH_KEYS);
      const writes = c.stores.flatMap((s) => s.txnWriteBytes);
      expect(Math.max(...writes), "largest write batch (raft entry) of the txn").toBeLessThan(RAFT_ENTRY_MAX_BYTES / 4);
      console.log(
        `${n}-key txn: ${prewrites.length} prewrite and ${commits.length} commit requests; largest request ` +
          `${Math.max(...prewrites.map((p) => p.bytes), ...commits.map((p) => p.bytes))} B; largest write batch ${Math.max(...writes)} B`,
      );

      for (const s of c.stores)
        expect(await dumpCf(s.storage, CF_LOCK), `no lock left on store ${s.storeId}`).toEqual([]);
      // A limit over the servers' per-request scan limit (100,000) is paged by the client.
      const all = await (await kv.begin()).scan("", "", 150_000);
      expect(all.length).toBe(n);
      for (const i of [0, 1, n / 2 - 1, n / 2, n - 1])
        expect(all[i]!.key.toString() + "=" + all[i]!.value.toString()).toBe(`${keyOf(i)}=${valueFor(i)}`);
    },
    KEYS > 50_000 ? 600_000 : 120_000,
  );
});
