// The TypeScript client (src/client) against a real tinyscheduler and fake stores that answer the
// raftstore's region errors: routing, cross-region scans, leader hints, stale epochs, deadlines,
// 2PC across regions and lock resolution.
import { afterEach, describe, expect, it } from "vitest";
import { KvClient } from "../../src/client/client.js";
import {
  KvDeadlineError,
  RegionRequestError,
  StoreUnreachableError,
  TxnConflictError,
} from "../../src/client/errors.js";
import { CF_LOCK } from "../../src/kv/engine/index.js";
import { encodeKey, Lock, Write, WriteKind } from "../../src/txn/index.js";
import { DeadlineExceededError } from "../../src/util/retry.js";
import { dumpCf } from "../lab4-txn/txn-server.js";
import type { FakeStore } from "./client-fake-store.js";
import { FakeCluster, peer, region } from "./client-fake-store.js";
import { UsageError } from "../../src/cli/ctl/command.js";
import { ctl, ctlRun, ctlShell } from "../harness/ctl.js";

let cluster: FakeCluster | undefined;
let client: KvClient | undefined;

afterEach(async () => {
  client?.close();
  client = undefined;
  await cluster?.stop();
  cluster = undefined;
});

const B = (s: string) => Buffer.from(s);
const texts = (kvs: { key: Buffer; value: Buffer }[]) => kvs.map((p) => `${p.key}=${p.value}`);

/** Two regions split at "m": region 10 ["", "m") led by store 1, region 20 ["m", "") led by store 2. */
async function twoRegions(
  opts: { timeoutMs?: number } = {},
): Promise<{ c: FakeCluster; kv: KvClient; s1: FakeStore; s2: FakeStore }> {
  const c = (cluster = await FakeCluster.start(2));
  await c.addRegion(region(10n, "", "m", [peer(11n, 1n)]), peer(11n, 1n));
  await c.addRegion(region(20n, "m", "", [peer(21n, 2n)]), peer(21n, 2n));
  const kv = (client = await KvClient.connect({ scheduler: c.scheduler.addr, timeoutMs: opts.timeoutMs ?? 5000 }));
  return { c, kv, s1: c.store(1n), s2: c.store(2n) };
}

describe("client: raw API routed by region", () => {
  it("routes each key to the store of its region and reads it back", async () => {
    const { kv, s1, s2 } = await twoRegions();
    await kv.put("apple", "1");
    await kv.put(B("zebra"), B("2"));
    await kv.put("m", "mid"); // the split key belongs to the right region
    expect((await kv.get("apple"))?.toString()).toBe("1");
    expect((await kv.get("zebra"))?.toString()).toBe("2");
    expect((await kv.get("m"))?.toString()).toBe("mid");
    expect(await kv.get("absent")).toBeUndefined();
    expect(s1.servedOk("rawPut").map((s) => s.keys[0])).toEqual(["apple"]);
    expect(s2.servedOk("rawPut").map((s) => s.keys[0])).toEqual(["zebra", "m"]);
    expect(
      [...s1.served, ...s2.served].filter((s) => s.regionError),
      "a fresh cache routes right the first time",
    ).toEqual([]);

    await kv.delete("zebra");
    expect(await kv.get("zebra")).toBeUndefined();
    await kv.put("apple", "in-lock-cf", "lock");
    expect((await kv.get("apple", "lock"))?.toString()).toBe("in-lock-cf");
    expect((await kv.get("apple"))?.toString(), "CFs are separate").toBe("1");
  });

  it("scans across regions in key order, honouring end and limit", async () => {
    const { kv } = await twoRegions();
    await kv.batchPut(["a", "c", "e", "k", "m", "n", "p", "x"].map((k) => ({ key: k, value: k.toUpperCase() })));
    expect(texts(await kv.scan("", "", 100))).toEqual(["a=A", "c=C", "e=E", "k=K", "m=M", "n=N", "p=P", "x=X"]);
    expect(texts(await kv.scan("b", "o", 100))).toEqual(["c=C", "e=E", "k=K", "m=M", "n=N"]);
    expect(texts(await kv.scan("d", "", 3))).toEqual(["e=E", "k=K", "m=M"]);
    expect(texts(await kv.scan("k", "m", 10)), "end is exclusive and stops before the next region").toEqual(["k=K"]);
    expect(await kv.scan("y", "", 10)).toEqual([]);
    expect(await kv.scan("p", "c", 10), "an empty range").toEqual([]);
  });
});

describe("client: region errors", () => {
  it("follows a NotLeader hint and remembers the new leader", async () => {
    const c = (cluster = await FakeCluster.start(2));
    const r = region(30n, "", "", [peer(31n, 1n), peer(32n, 2n)]);
    // The scheduler still believes peer 31 (store 1) leads; both stores know peer 32 does now.
    c.store(1n).host(r, peer(32n, 2n));
    c.store(2n).host(r, peer(32n, 2n));
    await c.heartbeat(r, peer(31n, 1n));
    const kv = (client = await KvClient.connect({ scheduler: c.scheduler.addr, timeoutMs: 5000 }));

    await kv.put("k1", "v1");
    expect(c.store(1n).served.map((s) => s.regionError)).toEqual(["notLeader"]);
    expect(c.store(2n).servedOk("rawPut")).toHaveLength(1);
    expect((await kv.get("k1"))?.toString()).toBe("v1");
    await kv.put("k2", "v2");
    expect(c.store(1n).served, "later requests go straight to the new leader").toHaveLength(1);
  });

  it("tries the next peer when the leader's store is down", async () => {
    const c = (cluster = await FakeCluster.start(2));
    await c.pd.putStore({ id: 3n, address: "127.0.0.1:1" }); // nobody listens there
    const r = region(35n, "", "", [peer(36n, 3n), peer(37n, 2n)]);
    c.store(2n).host(r, peer(37n, 2n));
    await c.heartbeat(r, peer(36n, 3n)); // the scheduler still names the dead store's peer
    const kv = (client = await KvClient.connect({ scheduler: c.scheduler.addr, timeoutMs: 5000 }));
    await kv.put("k", "v");
    expect((await kv.get("k"))?.toString()).toBe("v");
    expect(
      c
        .store(2n)
        .servedOk()
        .map((s) => s.rpc),
    ).toEqual(["rawPut", "rawGet"]);
  });

  it("updates the cache from EpochNotMatch after a split the scheduler has not heard of", async () => {
    const c = (cluster = await FakeCluster.start(2));
    const whole = region(40n, "", "", [peer(41n, 1n)]);
    await c.addRegion(whole, peer(41n, 1n));
    const kv = (client = await KvClient.connect({ scheduler: c.scheduler.addr, timeoutMs: 5000 }));
    await kv.put("b", "before-split");
    expect(kv.cache.snapshot().map((r) => r.id)).toEqual([40n]);

    // Region 40 splits at "m" (version 2); the right half, region 50, moves to store 2.
    const left = region(40n, "", "m", [peer(41n, 1n)], 2n);
    const right = region(50n, "m", "", [peer(51n, 2n)], 2n);
    c.store(1n).host(left, peer(41n, 1n));
    c.store(1n).host(right, peer(51n, 2n));
    c.store(2n).host(right, peer(51n, 2n));

    await kv.put("x", "after-split");
    expect(c.store(1n).served.at(-1)?.regionError).toBe("epochNotMatch");
    expect(
      c
        .store(2n)
        .servedOk("rawPut")
        .map((s) => [s.regionId, s.keys[0]]),
    ).toEqual([[50n, "x"]]);
    expect(kv.cache.snapshot().map((r) => [r.id, r.regionEpoch?.version])).toEqual([
      [40n, 2n],
      [50n, 2n],
    ]);
    expect((await kv.get("b"))?.toString()).toBe("before-split");
    expect((await kv.get("x"))?.toString()).toBe("after-split");
    expect(texts(await kv.scan("", "", 10))).toEqual(["b=before-split", "x=after-split"]);
  });

  it("refreshes from the scheduler after KeyNotInRegion", async () => {
    const c = (cluster = await FakeCluster.start(1));
    await c.addRegion(region(60n, "", "", [peer(61n, 1n)]), peer(61n, 1n));
    const kv = (client = await KvClient.connect({ scheduler: c.scheduler.addr, timeoutMs: 5000 }));
    await kv.put("a", "1");
    // Store 1 shrank region 60 to ["", "m") (same epoch: we cannot tell from the epoch), and
    // the scheduler learned of region 70 for the rest.
    c.store(1n).host(region(60n, "", "m", [peer(61n, 1n)]), peer(61n, 1n));
    await c.addRegion(region(70n, "m", "", [peer(71n, 1n)], 2n), peer(71n, 1n));
    await kv.put("q", "2");
    expect(c.store(1n).served.some((s) => s.regionError === "keyNotInRegion")).toBe(true);
    expect(c.store(1n).servedOk("rawPut").at(-1)?.regionId).toBe(70n);
  });

  it("gives up with a KvDeadlineError when no store answers", async () => {
    const c = (cluster = await FakeCluster.start(1));
    // Region 80's only peer lives on store 9, registered at an address nobody listens on.
    await c.pd.putStore({ id: 9n, address: "127.0.0.1:1" });
    await c.heartbeat(region(80n, "", "", [peer(81n, 9n)]), peer(81n, 9n));
    const kv = (client = await KvClient.connect({ scheduler: c.scheduler.addr, timeoutMs: 600, rpcTimeoutMs: 300 }));
    const t0 = Date.now();
    const err = await kv.get("lost").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KvDeadlineError);
    expect(err).toBeInstanceOf(DeadlineExceededError);
    const e = err as KvDeadlineError;
    expect(e.lastError).toBeInstanceOf(StoreUnreachableError);
    expect(e.message).toMatch(/raw get "lost".*gave up after 600 ms.*127\.0\.0\.1:1/);
    expect(e.attempts).toBeGreaterThan(1);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it("gives up when a region never finds its leader", async () => {
    const c = (cluster = await FakeCluster.start(1));
    const r = region(90n, "", "", [peer(91n, 1n)]);
    c.store(1n).host(r, undefined); // election never ends: NotLeader without a hint
    await c.heartbeat(r, peer(91n, 1n));
    const kv = (client = await KvClient.connect({ scheduler: c.scheduler.addr, timeoutMs: 400 }));
    const err = (await kv.put("k", "v").catch((e: unknown) => e)) as KvDeadlineError;
    expect(err).toBeInstanceOf(KvDeadlineError);
    expect(err.lastError).toBeInstanceOf(RegionRequestError);
    expect(err.message).toMatch(/not leader/);
    const n = c.store(1n).served.length;
    expect(n, "backoff keeps the retry count modest").toBeLessThan(40);
  });
});

/** Writes MVCC records straight into a fake store, as a txn that crashed mid-2PC would have left them. */
async function seed(
  s: FakeStore,
  recs: { key: string; value?: string; startTs: bigint; commitTs?: bigint; lockPrimary?: string; ttl?: bigint }[],
): Promise<void> {
  const batch = [];
  for (const r of recs) {
    const key = B(r.key);
    if (r.value !== undefined)
      batch.push({ kind: "put" as const, cf: "default" as const, key: encodeKey(key, r.startTs), value: B(r.value) });
    if (r.commitTs !== undefined)
      batch.push({
        kind: "put" as const,
        cf: "write" as const,
        key: encodeKey(key, r.commitTs),
        value: new Write(r.startTs, WriteKind.Put).toBytes(),
      });
    if (r.lockPrimary !== undefined) {
      batch.push({
        kind: "put" as const,
        cf: "lock" as const,
        key,
        value: new Lock(B(r.lockPrimary), r.startTs, r.ttl ?? 100n, WriteKind.Put).toBytes(),
      });
    }
  }
  await s.storage.write(undefined, batch);
}

const tsAgo = (ms: number) => BigInt(Date.now() - ms) << 18n;

describe("client: transactions", () => {
  it("commits across two regions with 2PC, primary first, and reads it back", async () => {
    const { kv, s1, s2 } = await twoRegions();
    const t = await kv.begin();
    t.put("alpha", "1");
    t.put("beta", "2");
    t.put("zulu", "3");
    t.delete("nothing");
    expect((await t.get("alpha"))?.toString(), "a txn reads its own writes").toBe("1");
    expect(await t.get("nothing")).toBeUndefined();
    await t.commit();
    expect(t.commitTs! > t.startTs).toBe(true);

    const ok = [...s1.served, ...s2.served].filter((s) => !s.regionError).sort((a, b) => a.seq - b.seq);
    const prewrites = ok.filter((s) => s.rpc === "kvPrewrite");
    const commits = ok.filter((s) => s.rpc === "kvCommit");
    expect(prewrites.map((p) => [p.regionId, p.keys])).toEqual([
      [10n, ["alpha", "beta"]],
      [20n, ["nothing", "zulu"]],
    ]);
    expect(commits[0]!.keys, "the primary alone is committed first").toEqual(["alpha"]);
    expect(Math.max(...prewrites.map((p) => p.seq)), "every prewrite precedes the commit point").toBeLessThan(
      commits[0]!.seq,
    );
    expect(
      commits
        .slice(1)
        .flatMap((c) => c.keys)
        .sort(),
    ).toEqual(["beta", "nothing", "zulu"]);
    expect(await dumpCf(s1.storage, CF_LOCK), "no lock left on store 1").toEqual([]);
    expect(await dumpCf(s2.storage, CF_LOCK), "no lock left on store 2").toEqual([]);

    const r = await kv.begin();
    expect(texts(await r.scan("", "", 10))).toEqual(["alpha=1", "beta=2", "zulu=3"]);
    expect((await r.get("zulu"))?.toString()).toBe("3");
    r.put("beta", "local");
    r.delete("alpha");
    expect(texts(await r.scan("", "", 10)), "scan merges the txn's own writes").toEqual(["beta=local", "zulu=3"]);
    await r.rollback();
    expect((await (await kv.begin()).get("beta"))?.toString(), "a rolled back txn changed nothing").toBe("2");
  });

  it("a write conflict is a TxnConflictError; the loser's locks are rolled back", async () => {
    const { kv, s1 } = await twoRegions();
    const t1 = await kv.begin();
    const t2 = await kv.begin();
    t1.put("a", "t1");
    t1.put("z", "t1");
    t2.put("z", "t2");
    await t2.commit();
    const err = (await t1.commit().catch((e: unknown) => e)) as TxnConflictError;
    expect(err).toBeInstanceOf(TxnConflictError);
    expect(err.reason).toBe("write-conflict");
    expect(err.key?.toString()).toBe("z");
    expect(t1.status).toBe("failed");
    expect(await dumpCf(s1.storage, CF_LOCK), "t1's primary lock on a was rolled back").toEqual([]);
    const r = await kv.begin();
    expect(await r.get("a")).toBeUndefined();
    expect((await r.get("z"))?.toString()).toBe("t2");
  });

  it("a reader resolves expired locks: rolls back an uncommitted txn, rolls forward a committed one", async () => {
    const { kv, s1, s2 } = await twoRegions();
    const old = tsAgo(20_000);
    await seed(s1, [{ key: "b", value: "old-b", startTs: old, commitTs: old + 10n }]);
    // Crashed before its commit point: primary "y" (region 20) and secondary "b" (region 10) locked.
    const crashed = tsAgo(10_000);
    await seed(s2, [{ key: "y", value: "crashed", startTs: crashed, lockPrimary: "y" }]);
    await seed(s1, [{ key: "b", value: "crashed", startTs: crashed, lockPrimary: "y" }]);
    // Crashed after its commit point: primary "x" committed, secondary "d" still locked.
    const done = tsAgo(5_000);
    await seed(s2, [{ key: "x", value: "new-x", startTs: done, commitTs: done + 5n }]);
    await seed(s1, [{ key: "d", value: "new-d", startTs: done, lockPrimary: "x" }]);

    const r = await kv.begin();
    expect((await r.get("b"))?.toString(), "the crashed txn is rolled back").toBe("old-b");
    const checks = s2.servedOk("kvCheckTxnStatus");
    expect(
      checks.map((c) => c.keys),
      "CheckTxnStatus goes to the primary's region",
    ).toEqual([["y"]]);
    expect(s1.servedOk("kvResolveLock")).toHaveLength(1);
    expect(texts(await r.scan("", "", 10)), "the committed txn is rolled forward; y's lock was rolled back").toEqual([
      "b=old-b",
      "d=new-d",
      "x=new-x",
    ]);
    expect(await dumpCf(s1.storage, CF_LOCK)).toEqual([]);
    expect(await dumpCf(s2.storage, CF_LOCK)).toEqual([]);
  });

  it("a reader waits for a live lock until its TTL expires, then resolves it", async () => {
    const { kv, s1 } = await twoRegions();
    const lockTs = await kv.tso();
    await seed(s1, [{ key: "k", value: "pending", startTs: lockTs, lockPrimary: "k", ttl: 300n }]);
    const r = await kv.begin();
    const t0 = Date.now();
    expect(await r.get("k")).toBeUndefined();
    expect(Date.now() - t0, "it waited for the lock's TTL").toBeGreaterThanOrEqual(200);
    expect(s1.servedOk("kvCheckTxnStatus").length).toBeGreaterThan(1);
  });

  it("a live lock that outlives the deadline is a KvDeadlineError naming the lock", async () => {
    const { kv, s1 } = await twoRegions({ timeoutMs: 300 });
    await seed(s1, [{ key: "k", value: "pending", startTs: await kv.tso(), lockPrimary: "k", ttl: 60_000n }]);
    const r = await kv.begin();
    const err = (await r.get("k").catch((e: unknown) => e)) as KvDeadlineError;
    expect(err).toBeInstanceOf(KvDeadlineError);
    expect(err.message).toMatch(/locked by txn/);
  });
});

describe("tinykv-ctl", () => {
  it("the binary: one-shot commands and a piped shell, with exit codes 0, 1 (failed) and 2 (usage)", async () => {
    const { c } = await twoRegions();
    const sched = ["--scheduler", c.scheduler.addr];
    const [put, usage, pipedWithFailure, down] = await Promise.all([
      ctl([...sched, "put", "0x00ff", "bin"]),
      ctl([...sched, "get"]),
      ctl(sched, "get 0x00ff\nget\nexit\nget never-run\n"),
      ctl(["--scheduler", "127.0.0.1:1", "--timeout", "500", "get", "k"]),
    ]);
    expect(put, put.err).toMatchObject({ code: 0, out: "OK\n" });
    expect(usage.code).toBe(2);
    expect(usage.err).toBe("tinykv-ctl: error: usage: get <key> [--cf CF]\n");
    expect(pipedWithFailure, "a piped shell with a failed command exits 1").toMatchObject({
      code: 1,
      err: "error: usage: get <key> [--cf CF]\n",
    });
    expect(pipedWithFailure.out).toMatch(/^(bin|\(not found\))\n$/);
    expect(down.code).toBe(1);
    expect(down.err).toMatch(/^tinykv-ctl: error: cannot reach the scheduler at 127\.0\.0\.1:1: .*\n$/);
  });

  it("runs commands from a shell script, with clear errors", async () => {
    const { c } = await twoRegions();
    const target = { scheduler: c.scheduler.addr };
    expect(await ctlRun(target, ["put", "0x00ff", "bin"])).toEqual({ out: "OK\n" });
    const usage = await ctlRun(target, ["get"]);
    expect(usage.error).toBeInstanceOf(UsageError);
    expect(usage.error?.message).toBe("usage: get <key> [--cf CF]");
    const shellRun = await ctlShell(
      target,
      'put apple 1\ntxn put kiwi 2 put zoo 3 get kiwi\ntxn get zoo get kiwi get apple\nget 0x00ff\nscan "" b --limit 10\nregions\nstores\nstatus\nget\nexit\nget never-run\n',
    );
    expect(shellRun.failures).toBe(1);
    expect(shellRun.err).toBe("error: usage: get <key> [--cf CF]\n");
    const out = shellRun.out;
    expect(out, "a txn reads its own writes; raw and txn data are separate").toMatch(
      /^OK\nkiwi => 2\ncommitted 2 writes \(start_ts \d+, commit_ts \d+\)\nzoo => 3\nkiwi => 2\napple => \(not found\)\nbin\n/,
    );
    expect(out).toContain("0x00ff => bin\napple => 1\n(2 pairs)\n");
    expect(out).toMatch(
      /10 +\[-inf, m\) +ver 1 conf 1 +11@store1 +11@store1\n20 +\[m, \+inf\) +ver 1 conf 1 +21@store2 +21@store2\n\(2 regions\)/,
    );
    expect(out).toMatch(new RegExp(`1 +${c.store(1n).addr} +Up +1 +1\n2 +${c.store(2n).addr} +Up +1 +1`));
    expect(out).toMatch(/stores: +2 \(2 up\)\nregions: +2\ntso: +\d+ \(20\d\d-/);
    expect(out).not.toContain("never-run");

    const down = await ctlRun({ scheduler: "127.0.0.1:1", timeoutMs: 500 }, ["get", "k"]);
    expect(down.error?.message).toMatch(/^cannot reach the scheduler at 127\.0\.0\.1:1: /);
  });

  it("scan shows raw data only; scan --txn shows committed transactional data at a fresh timestamp", async () => {
    const { c } = await twoRegions();
    const run = await ctlShell(
      { scheduler: c.scheduler.addr },
      'txn put a 1 put n 2\nput b raw-b\nscan ""\nscan "" --txn\ntxn put a 3\nscan "" --txn --limit 1\nscan "" --txn --cf lock\n',
    );
    expect(run.err).toBe("error: scan: --txn reads transactional data, which has no --cf\n");
    expect(run.out).toMatch(
      new RegExp(
        [
          String.raw`committed 2 writes \(start_ts \d+, commit_ts \d+\)`,
          "OK",
          "b => raw-b",
          String.raw`\(1 pair\)`,
          "a => 1",
          "n => 2",
          String.raw`\(2 pairs\)`,
          String.raw`committed 1 write \(start_ts \d+, commit_ts \d+\)`,
          "a => 3",
          String.raw`\(1 pair\)`,
        ].join("\n") + "\n$",
      ),
    );
  });
});
