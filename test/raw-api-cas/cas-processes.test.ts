import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvClient, KvOutcomeUnknownError } from "../../src/client/index.js";
import { FAST_STORE_CONFIG, ProcessCluster } from "../harness/processes.js";
import { ctl, ctlRun } from "../harness/ctl.js";
import { waitFor } from "../harness/wait.js";

/**
 * RawCompareAndSwap and raw TTL through the real binaries over gRPC: tinyscheduler and three
 * tinykv-server processes, driven by the TS client and by tinykv-ctl.
 */
describe("raw cas and ttl with real binaries", () => {
  const cluster = new ProcessCluster({ ...FAST_STORE_CONFIG, rawTtlCheckTickMs: 200 });
  const clients: KvClient[] = [];
  let kv: KvClient;
  const connect = async () => {
    const c = await KvClient.connect({ scheduler: cluster.schedulerAddr, timeoutMs: 30_000 });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    await cluster.startScheduler();
    for (const n of [1, 2, 3]) await cluster.addStore(n);
    kv = await connect();
    await waitFor(
      async () => {
        await kv.put("warm-up", "1");
        return true;
      },
      {
        timeoutMs: 30_000,
        get message() {
          return `the cluster never took a write\n${cluster.logs()}`;
        },
      },
    );
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster.shutdown();
  });

  it("cas on a missing key with previous-not-exist swaps once; a wrong expectation answers the value held", async () => {
    const first = await kv.compareAndSwap("cas-missing", "v1", { notExist: true });
    expect(first).toEqual({ succeed: true, previous: undefined });
    const again = await kv.compareAndSwap("cas-missing", "v2", { notExist: true });
    expect(again.succeed).toBe(false);
    expect(again.previous?.toString()).toBe("v1");
    const wrong = await kv.compareAndSwap("cas-missing", "v2", { value: "not-v1" });
    expect(wrong.succeed).toBe(false);
    expect(wrong.previous?.toString()).toBe("v1");
    const right = await kv.compareAndSwap("cas-missing", undefined, { value: "v1" });
    expect(right.succeed, "compare-and-delete").toBe(true);
    expect(await kv.get("cas-missing")).toBeUndefined();
  });

  it("a counter incremented by cas from 8 clients ends exact, through a kill of the region's leader", async () => {
    // Small: on a loaded 2-core machine one contended swap round takes 100-250 ms.
    const TARGET = 48;
    const KILL_AT = 16;
    /** The counter holds every increment's tag: an increment applied twice, or lost, shows. */
    type Counter = { n: number; tags: string[] };
    const parse = (v: Buffer | undefined): Counter => (v ? (JSON.parse(v.toString()) as Counter) : { n: 0, tags: [] });
    const key = "cas-counter";
    const acked: string[] = [];
    const ambiguous: string[] = [];
    let killed = false;
    const killLeader = async () => {
      killed = true;
      const r = await cluster.client!.getRegion(Buffer.from(key));
      const { store } = await cluster.client!.getStore(r!.leader!.storeId);
      const n = [...cluster.stores.entries()].find(([, s]) => s.addr === store.address)![0];
      await cluster.kill(n, "SIGKILL");
    };
    const worker = async (id: number) => {
      const c = await connect();
      let seq = 0;
      let current: Buffer | undefined = await c.get(key);
      const deadline = Date.now() + 60_000;
      for (;;) {
        if (Date.now() > deadline)
          throw new Error(`CAS worker ${id} did not see the counter reach ${TARGET} within 60 s (acked ${acked.length})`);
        const now = parse(current);
        if (now.n >= TARGET) return;
        const tag = `c${id}-${seq++}`;
        const next = Buffer.from(JSON.stringify({ n: now.n + 1, tags: [...now.tags, tag] }));
        try {
          const r = await c.compareAndSwap(key, next, current === undefined ? { notExist: true } : { value: current });
          if (r.succeed) {
            acked.push(tag);
            current = next;
            if (acked.length === KILL_AT && !killed) await killLeader();
          } else current = r.previous;
        } catch (err) {
          // Maybe applied (the leader died with it in its log): the final value tells.
          if (!(err instanceof KvOutcomeUnknownError)) throw err;
          ambiguous.push(tag);
          current = await c.get(key);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, i) => worker(i)));
    const final = parse(await kv.get(key));
    expect(killed, "the leader was killed mid-run").toBe(true);
    expect(new Set(final.tags).size, "no increment applied twice").toBe(final.tags.length);
    expect(final.n, "the counter counts exactly the increments it holds").toBe(final.tags.length);
    for (const tag of acked) expect(final.tags, `acknowledged increment ${tag} was lost`).toContain(tag);
    const applied = new Set([...acked, ...ambiguous]);
    for (const tag of final.tags) expect(applied.has(tag), `increment ${tag} was never attempted`).toBe(true);
    const ambiguousApplied = ambiguous.filter((t) => final.tags.includes(t)).length;
    expect(final.n).toBe(acked.length + ambiguousApplied);
    expect(final.n).toBeGreaterThanOrEqual(TARGET);
  });

  it("a key put with a short ttl reports it, then vanishes from get and scan; a put without ttl after it stays", async () => {
    await kv.put("ttl-short", "soon gone", "", { ttlSeconds: 1 });
    await kv.put("ttl-then-plain", "had a ttl", "", { ttlSeconds: 1 });
    await kv.put("ttl-then-plain", "now plain");
    expect(await kv.keyTtl("ttl-short")).toBe(1);
    expect(await kv.keyTtl("ttl-then-plain"), "a put without ttl clears the old one").toBe(0);
    expect(await kv.keyTtl("ttl-nothing")).toBeUndefined();
    await waitFor(async () => (await kv.get("ttl-short")) === undefined, {
      timeoutMs: 10_000,
      message: "a key with a 1 s ttl was still readable after 10 s",
    });
    const scanned = await kv.scan("ttl-", "ttl.", 10);
    expect(scanned.map((p) => p.key.toString())).toEqual(["ttl-then-plain"]);
    expect((await kv.get("ttl-then-plain"))?.toString()).toBe("now plain");
  });

  it("tinykv-ctl: cas, put --ttl and ttl", async () => {
    const target = { scheduler: cluster.schedulerAddr };
    expect((await ctlRun(target, ["cas", "ctl-key", "one"], { "not-exist": true })).out).toContain(
      "swapped (it held (not found))",
    );
    // The binary: a swap that did not happen is a failed command, a bad --ttl a usage error.
    const refused = await ctl(["--scheduler", cluster.schedulerAddr, "cas", "ctl-key", "two", "--expect", "zero"]);
    expect(refused.code, "a cas that did not swap fails").toBe(1);
    expect(refused.err).toContain("not swapped: the key holds one");
    const bad = await ctl(["--scheduler", cluster.schedulerAddr, "put", "ctl-ttl", "x", "--ttl", "soon"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("--ttl wants a positive duration");
    expect((await ctlRun(target, ["cas", "ctl-key", "two"], { expect: "one" })).out).toContain("swapped (it held one)");
    expect((await ctlRun(target, ["put", "ctl-ttl", "x"], { ttl: "1h" })).error).toBeUndefined();
    expect((await ctlRun(target, ["ttl", "ctl-ttl"])).out).toMatch(/^(3600|3599)s left/m);
    expect((await ctlRun(target, ["ttl", "ctl-key"])).out).toContain("no ttl (never expires)");
  });
});
