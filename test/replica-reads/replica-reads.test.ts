// Follower reads and stale reads (issue 18 item 4) on tinyscheduler + 3 tinykv-server processes
// over real gRPC: what a client sees when it sends reads to followers.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidReadOptionError } from "../../src/client/index.js";
import type { Peer } from "../../src/proto/metapb.js";
import { ctlRun } from "../harness/ctl.js";
import { waitFor } from "../harness/wait.js";
import type { ReplicaCluster } from "./helpers.js";
import { contextFor, replicaReadsServed, startReplicaCluster } from "./helpers.js";

let c: ReplicaCluster;
beforeAll(async () => {
  c = await startReplicaCluster();
}, 90_000);
afterAll(async () => {
  await c?.close();
});

type WithRegionError = { regionError?: { message: string } | undefined };

/** Sends `call` until the peer answers without a region error (it may not know the leader yet). */
function answered<R extends WithRegionError>(what: string, call: () => Promise<R>): Promise<R> {
  let last = "";
  return waitFor(
    async () => {
      const r = await call();
      if (!r.regionError) return r;
      last = r.regionError.message;
      return undefined;
    },
    {
      timeoutMs: 10_000,
      intervalMs: 20,
      get message() {
        return `${what}: no answer without a region error (last: ${last})`;
      },
    },
  );
}

async function followerServedTotal(peers: Peer[]): Promise<number> {
  let n = 0;
  for (const p of peers) n += await replicaReadsServed(c.statusAddrOf(p), "follower");
  return n;
}

describe("replica reads", () => {
  it("a follower never returns a raw value older than a write acknowledged before the read started", async () => {
    const key = Buffer.from("rr-raw");
    const rounds = 10;
    const servedBefore = await followerServedTotal(c.followers);
    for (let i = 0; i < rounds; i++) {
      await c.kv.put(key, `v${i}`);
      for (const f of c.followers) {
        const context = contextFor(c.region, f, { replicaRead: true });
        const got = await answered(`raw get from peer ${f.id}`, () => c.rpcOf(f).rawGet({ context, key }));
        expect(got.error, `round ${i}, peer ${f.id}`).toBe("");
        expect(got.value.toString(), `round ${i}, follower peer ${f.id}`).toBe(`v${i}`);
      }
      const scanned = await answered("raw scan from a follower", () =>
        c.rpcOf(c.followers[0]!).rawScan({
          context: contextFor(c.region, c.followers[0]!, { replicaRead: true }),
          startKey: key,
          limit: 1,
        }),
      );
      expect(scanned.kvs.map((kv) => kv.value.toString())).toEqual([`v${i}`]);
    }
    // The followers served them (a leader read does not count there).
    expect(await followerServedTotal(c.followers)).toBeGreaterThanOrEqual(servedBefore + rounds);
  });

  it("transactional replica reads see the latest commit and still stop at locks", async () => {
    const key = Buffer.from("rr-txn");
    for (let i = 0; i < 5; i++) {
      const txn = await c.kv.begin();
      txn.put(key, `t${i}`);
      await txn.commit();
      const version = await c.kv.tso();
      for (const f of c.followers) {
        const context = contextFor(c.region, f, { replicaRead: true });
        const got = await answered("kv get from a follower", () => c.rpcOf(f).kvGet({ context, key, version }));
        expect(got.value.toString(), `round ${i}, follower peer ${f.id}`).toBe(`t${i}`);
        const scan = await answered("kv scan from a follower", () =>
          c.rpcOf(f).kvScan({ context, startKey: key, limit: 1, version }),
        );
        expect(scan.pairs.map((p) => p.value.toString())).toEqual([`t${i}`]);
      }
    }
    // A lock left by a prewrite at the leader is seen by a follower's read above its start ts.
    const startTs = await c.kv.tso();
    const leaderCtx = contextFor(c.region, c.leader, {});
    const pw = await answered("prewrite at the leader", () =>
      c.rpcOf(c.leader).kvPrewrite({
        context: leaderCtx,
        mutations: [{ op: 0, key, value: Buffer.from("locked") }],
        primaryLock: key,
        startVersion: startTs,
        lockTtl: 60_000n,
      }),
    );
    expect(pw.errors).toEqual([]);
    const f = c.followers[0]!;
    const version = await c.kv.tso();
    const got = await answered("kv get over a lock", () =>
      c.rpcOf(f).kvGet({ context: contextFor(c.region, f, { replicaRead: true }), key, version }),
    );
    expect(got.error?.locked?.lockVersion, "the follower reports the lock").toBe(startTs);
    await answered("rollback at the leader", () =>
      c.rpcOf(c.leader).kvBatchRollback({ context: leaderCtx, startVersion: startTs, keys: [key] }),
    );
  });

  it("the client's { replicaRead } reads go to followers and see acknowledged writes", async () => {
    const before = await followerServedTotal(c.followers);
    for (let i = 0; i < 5; i++) {
      await c.kv.put("rr-client", `c${i}`);
      expect((await c.kv.get("rr-client", "", { replicaRead: true }))?.toString()).toBe(`c${i}`);
      const txn = await c.kv.begin();
      txn.put("rr-client-txn", `x${i}`);
      await txn.commit();
      expect((await c.kv.txnGet("rr-client-txn", { replicaRead: true }))?.toString()).toBe(`x${i}`);
    }
    expect(await followerServedTotal(c.followers)).toBeGreaterThanOrEqual(before + 10);
    await expect(c.kv.get("rr-client", "", { staleRead: { maxStalenessMs: 1000 } })).rejects.toThrow(
      InvalidReadOptionError,
    );
  });
});

describe("replica scans", () => {
  it("a { replicaRead } scan, forward or reverse, goes to followers and sees acknowledged writes", async () => {
    for (const reverse of [false, true]) {
      const prefix = reverse ? "rr-rscan-" : "rr-fscan-";
      const before = await followerServedTotal(c.followers);
      for (let i = 0; i < 3; i++) {
        await c.kv.put(`${prefix}${i}`, `s${i}-${reverse}`);
        const got = reverse
          ? await c.kv.scan(`${prefix}~`, prefix, 10, "", { replicaRead: true, reverse: true })
          : await c.kv.scan(prefix, `${prefix}~`, 10, "", { replicaRead: true });
        const keys = Array.from({ length: i + 1 }, (_, j) => `${prefix}${j}`);
        expect(got.map((p) => p.key.toString())).toEqual(reverse ? keys.reverse() : keys);
        expect(got.find((p) => p.key.toString() === `${prefix}${i}`)?.value.toString()).toBe(`s${i}-${reverse}`);
      }
      expect(
        await followerServedTotal(c.followers),
        `followers served the ${reverse ? "reverse" : "forward"} scans`,
      ).toBeGreaterThanOrEqual(before + 3);
    }
  });
});

describe("stale reads", () => {
  it("a stale read at ts sees the write committed before ts and not the one after", async () => {
    const key = Buffer.from("st-key");
    const beforeFirst = await c.kv.tso();
    const first = await c.kv.begin();
    first.put(key, "before");
    await first.commit();
    const ts = await c.kv.tso();
    const second = await c.kv.begin();
    second.put(key, "after");
    await second.commit();
    for (const f of c.followers) {
      const context = contextFor(c.region, f, { staleRead: true });
      // Until the follower applied a resolved ts >= ts it says DataIsNotReady: wait for it.
      const got = await answered(`stale get at ${ts} from peer ${f.id}`, () =>
        c.rpcOf(f).kvGet({ context, key, version: ts }),
      );
      expect(got.value.toString(), `stale read at ts from follower peer ${f.id}`).toBe("before");
      const older = await answered("stale get before the first write", () =>
        c.rpcOf(f).kvGet({ context, key, version: beforeFirst }),
      );
      expect(older.notFound, "nothing was committed at that ts").toBe(true);
    }
    expect((await (await c.kv.staleSnapshot({ ts })).get(key))?.toString()).toBe("before");
    // A ts taken now is answered by the leader if no replica has reached it: the latest commit.
    expect((await c.kv.txnGet(key, { staleRead: { maxStalenessMs: 0 } }))?.toString()).toBe("after");
    let stale = 0;
    for (const p of c.region.peers) stale += await replicaReadsServed(c.statusAddrOf(p), "stale");
    expect(stale, "stale reads served from the followers' safe ts").toBeGreaterThanOrEqual(4);
  });

  it("a follower whose safe ts lags answers DataIsNotReady; the client then reads at the leader", async () => {
    const key = Buffer.from("st-lag");
    const txn = await c.kv.begin();
    txn.put(key, "fresh");
    await txn.commit();
    const f = c.followers[0]!;
    const context = contextFor(c.region, f, { staleRead: true });
    let notReady: { safeTs: bigint; ts: bigint } | undefined;
    // A ts taken just now is above the safe ts the follower has, unless a resolved-ts round
    // happened to land in between: then it serves the read, and the next try takes a newer ts.
    for (let i = 0; i < 20 && !notReady; i++) {
      const ts = await c.kv.tso();
      const r = await c.rpcOf(f).kvGet({ context, key, version: ts });
      const dnr = r.regionError?.dataIsNotReady;
      if (dnr) {
        expect(dnr.peerId).toBe(f.id);
        expect(dnr.regionId).toBe(c.region.id);
        notReady = { safeTs: dnr.safeTs, ts };
      } else {
        expect(r.regionError).toBeUndefined();
        expect(r.value.toString()).toBe("fresh");
      }
    }
    expect(notReady, "a follower refused a read above its safe ts").toBeDefined();
    expect(notReady!.safeTs).toBeLessThan(notReady!.ts);

    const notReadyTotal = async () => {
      let n = 0;
      for (const p of c.region.peers) n += await replicaReadsServed(c.statusAddrOf(p), "stale_not_ready");
      return n;
    };
    // The client sends a stale read to a follower first; refused, it reads at the leader.
    let fellBack = false;
    for (let i = 0; i < 20 && !fellBack; i++) {
      const before = await notReadyTotal();
      expect((await c.kv.txnGet(key, { staleRead: { maxStalenessMs: 0 } }))?.toString()).toBe("fresh");
      fellBack = (await notReadyTotal()) > before;
    }
    expect(fellBack, "a client read was refused by a replica and answered anyway").toBe(true);
  });

  it("raw reads refuse stale_read: raw keys have no timestamps", async () => {
    const f = c.followers[0]!;
    const r = await c.rpcOf(f).rawGet({ context: contextFor(c.region, f, { staleRead: true }), key: Buffer.from("x") });
    expect(r.error).toMatch(/raw keys have none/);
  });
});

describe("tinykv-ctl", () => {
  it("get --replica, --txn --replica and --stale read the values a user wrote", async () => {
    const target = { scheduler: c.cluster.schedulerAddr };
    await c.kv.put("ctl-raw", "raw-value");
    const txn = await c.kv.begin();
    txn.put("ctl-txn", "txn-value");
    await txn.commit();
    expect((await ctlRun(target, ["get", "ctl-raw"], { replica: true })).out.trim()).toBe("raw-value");
    expect((await ctlRun(target, ["get", "ctl-txn"], { txn: true, replica: true })).out.trim()).toBe("txn-value");
    // Committed before the TSO's now - 0 s: every replica or the leader has it.
    expect((await ctlRun(target, ["get", "ctl-txn"], { stale: "0s" })).out.trim()).toBe("txn-value");
    // 1 minute ago the key did not exist yet (the cluster is younger than that, or the key is).
    expect((await ctlRun(target, ["get", "ctl-txn"], { stale: "1m" })).out.trim()).toBe("(not found)");
    const bad = await ctlRun(target, ["get", "ctl-txn"], { stale: "soon" });
    expect(bad.error?.message).toMatch(/not a duration/);
    const raw = await ctlRun(target, ["get", "ctl-raw"], { stale: "5s", cf: "default" });
    expect(raw.error?.message).toMatch(/no --cf/);
  });
});
