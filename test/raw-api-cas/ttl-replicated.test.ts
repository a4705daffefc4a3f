import { afterEach, describe, expect, it } from "vitest";
import { CF_DEFAULT, RAW_CF_DEFAULT, RAW_CF_TTL_DEFAULT } from "../../src/kv/engine/index.js";
import type { CfName } from "../../src/kv/engine/index.js";
import { RawHandlers } from "../../src/kv/server/index.js";
import { ledRegions, RawTtlHandlers, TtlSweeper } from "../../src/kv/server/raw-ttl.js";
import { RawCasHandlers } from "../../src/kv/server/raw-cas.js";
import { RaftStorage, RegionError } from "../../src/kv/storage/index.js";
import type { Error as RegionErrorPb } from "../../src/proto/errorpb.js";
import type { Context } from "../../src/proto/kvrpcpb.js";
import { silentLogger } from "../../src/util/logger.js";
import { realRuntime } from "../../src/util/runtime.js";
import { TestCluster } from "../harness/cluster.js";
import { waitFor } from "../harness/wait.js";

/**
 * Raw TTL and CAS on a 3-store cluster, with the raw API's clock under the test's control (the
 * raft runtime stays real): expiry is judged by that clock, so no test here waits for time to pass.
 */
describe("raw ttl and cas on a replicated cluster", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  let nowMs = 1_700_000_000_000;
  const clock = { now: () => nowMs };

  async function started(): Promise<TestCluster> {
    cluster = new TestCluster({ stores: 3 });
    await cluster.start();
    return cluster;
  }

  /** A handler call on the key's leader, retried while it answers a region error. */
  function onLeader<R extends { regionError?: RegionErrorPb | undefined }>(
    key: Buffer,
    what: string,
    call: (h: { raw: RawHandlers; cas: RawCasHandlers; ttl: RawTtlHandlers }, ctx: Context) => Promise<R>,
  ): Promise<R> {
    return cluster!.onLeader(key, what, async (storage, ctx) => {
      const raw = new RawHandlers(storage, clock);
      const res = await call(
        { raw, cas: new RawCasHandlers(raw.keyspace), ttl: new RawTtlHandlers(raw.keyspace) },
        ctx,
      );
      if (res.regionError) throw new RegionError(res.regionError);
      return res;
    });
  }

  const k = (s: string) => Buffer.from(s);
  const put = (key: string, value: string, ttl = 0n) =>
    onLeader(k(key), `put ${key}`, ({ raw }, context) =>
      raw.rawPut({ context, key: k(key), value: k(value), cf: "", ttl }),
    );
  const get = async (key: string) => {
    const r = await onLeader(k(key), `get ${key}`, ({ raw }, context) => raw.rawGet({ context, key: k(key), cf: "" }));
    return r.notFound ? undefined : r.value.toString();
  };
  const keyTtl = (key: string) =>
    onLeader(k(key), `ttl ${key}`, ({ ttl }, context) => ttl.rawGetKeyTtl({ context, key: k(key), cf: "" }));
  const scanKeys = async (start: string) => {
    const r = await onLeader(k(start), `scan ${start}`, ({ raw }, context) =>
      raw.rawScan({ context, startKey: k(start), endKey: Buffer.alloc(0), limit: 100, cf: "", reverse: false }),
    );
    return r.kvs.map((p) => p.key.toString());
  };

  /** How many keys every store's engine holds in `cf` (replicas agree once they applied). */
  async function engineCounts(c: TestCluster, cf: CfName): Promise<number[]> {
    const counts: number[] = [];
    for (const id of c.storeIds) {
      const snap = c.engine(id)!.snapshot();
      const cursor = snap.cursor(cf);
      await cursor.seek(Buffer.alloc(0));
      counts.push((await cursor.take(100_000)).length);
      await cursor.close();
      await snap.close();
    }
    return counts;
  }

  it("an expired key is invisible to get, scan, ttl and cas at once; a put without ttl clears the expiry", async () => {
    const c = await started();
    await put("t-a", "short", 30n);
    await put("t-b", "forever");
    await put("t-c", "long", 3600n);
    expect((await keyTtl("t-a")).ttl).toBe(30n);
    expect((await keyTtl("t-b")).ttl, "a key without ttl reports 0").toBe(0n);
    expect(await scanKeys("t-")).toEqual(["t-a", "t-b", "t-c"]);

    nowMs += 31_000;
    expect(await get("t-a"), "expired: get").toBeUndefined();
    expect(await scanKeys("t-"), "expired: scan").toEqual(["t-b", "t-c"]);
    expect((await keyTtl("t-a")).notFound, "expired: ttl").toBe(true);
    expect((await keyTtl("t-c")).ttl).toBe(3600n - 31n);
    const cas = await onLeader(k("t-a"), "cas t-a", ({ cas }, context) =>
      cas.rawCompareAndSwap({
        context,
        key: k("t-a"),
        value: k("new"),
        previousNotExist: true,
        previousValue: Buffer.alloc(0),
        cf: "",
        ttl: 0n,
        delete: false,
      }),
    );
    expect(cas.succeed, "an expired key counts as absent for cas").toBe(true);
    expect(cas.previousNotExist).toBe(true);
    expect(await get("t-a")).toBe("new");

    // t-c had a ttl; a put without one makes it permanent, even long after the old expiry.
    await put("t-c", "now-permanent");
    nowMs += 10 * 3600_000;
    expect(await get("t-c")).toBe("now-permanent");
    expect((await keyTtl("t-c")).ttl).toBe(0n);
    // A value written without ttl is stored byte for byte (what an older build reads back).
    for (const id of c.storeIds)
      await waitFor(async () => (await c.engine(id)!.get(RAW_CF_DEFAULT, k("t-b")))?.toString() === "forever", {
        timeoutMs: 5000,
        message: `store ${id} never stored t-b's plain value`,
      });
    // Followers apply the last put when they learn its commit (the next append or heartbeat).
    await waitFor(async () => (await engineCounts(c, RAW_CF_TTL_DEFAULT)).every((n) => n === 0), {
      timeoutMs: 5000,
      message: "an expiry was left behind on some store after t-c was put without ttl",
    });
  });

  it("concurrent cas proposals applied in one turn see each other: exactly one of 20 not-exist swaps wins, and a counter ends exact", async () => {
    const c = await started();
    const cas = (key: string, value: string, expected: string | undefined) =>
      onLeader(k(key), `cas ${key}`, ({ cas }, context) =>
        cas.rawCompareAndSwap({
          context,
          key: k(key),
          value: k(value),
          previousNotExist: expected === undefined,
          previousValue: k(expected ?? ""),
          cf: "",
          ttl: 0n,
          delete: false,
        }),
      );
    const first = await Promise.all(Array.from({ length: 20 }, (_, i) => cas("once", `writer-${i}`, undefined)));
    const winners = first.filter((r) => r.succeed);
    expect(winners.length, "exactly one not-exist swap may win").toBe(1);
    const stored = await get("once");
    for (const r of first.filter((x) => !x.succeed)) expect(r.previousValue.toString()).toBe(stored);

    // Every round, 8 swaps from the same expected value race in one turn: one wins, the others see it.
    let n = 0;
    await put("counter", "0");
    for (let round = 0; round < 5; round++) {
      const tries = await Promise.all(Array.from({ length: 8 }, () => cas("counter", String(n + 1), String(n))));
      expect(tries.filter((r) => r.succeed).length).toBe(1);
      for (const r of tries.filter((x) => !x.succeed)) expect(r.previousValue.toString()).toBe(String(n + 1));
      n++;
    }
    expect(await get("counter")).toBe("5");
    void c;
  });

  it("the background sweep removes expired keys from every replica, and never a key put again since", async () => {
    const c = await started();
    for (let i = 0; i < 30; i++) await put(`s-${String(i).padStart(2, "0")}`, `v${i}`, 10n);
    await put("s-keep", "no ttl");
    nowMs += 11_000;
    const leaderStore = c.store(c.leaderOf(1n)!)!;
    const raw = new RawHandlers(new RaftStorage(leaderStore), clock);
    const sweeper = new TtlSweeper({
      keyspace: raw.keyspace,
      targets: ledRegions(leaderStore),
      runtime: realRuntime,
      intervalMs: 1000,
      batch: 8,
      log: silentLogger,
    });
    // Bounded: one round removes at most its batch.
    expect(await sweeper.sweepOnce()).toBe(8);

    // s-29 expired, was read by a sweep, then put again: the sweep's conditional delete must lose.
    const region = leaderStore.peers.get(1n)!;
    const ctx: Context = { regionId: 1n, regionEpoch: region.region.regionEpoch, peer: region.meta, term: 0n };
    const reader = await raw.keyspace.reader(ctx);
    const cursor = reader.iterExpiries(CF_DEFAULT);
    await cursor.seek(k("s-29"));
    const expiryRead = Buffer.from(cursor.value);
    await cursor.close();
    await reader.close();
    await put("s-29", "fresh");
    expect(await raw.keyspace.removeExpired(ctx, CF_DEFAULT, k("s-29"), expiryRead)).toBe(false);

    while ((await sweeper.sweepOnce()) > 0);
    expect(await get("s-29"), "the fresh put survived the sweep").toBe("fresh");
    expect(await get("s-keep")).toBe("no ttl");
    await waitFor(
      async () => {
        const values = await engineCounts(c, RAW_CF_DEFAULT);
        const expiries = await engineCounts(c, RAW_CF_TTL_DEFAULT);
        return values.every((n) => n === 2) && expiries.every((n) => n === 0);
      },
      {
        timeoutMs: 10_000,
        message: "the expired keys were not removed from every replica's engine",
      },
    );
  });
});
