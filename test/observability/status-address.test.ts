/**
 * A store's status address reaches the scheduler (metapb.Store.status_address, TiKV's field 7):
 * the store registers it with PutStore, the scheduler keeps it, and its dashboard and
 * `tinykv-ctl metrics <store-id>` read /metrics there, not at the gRPC port + 20. A store that
 * registers none (a TinyKV store) is still looked for at the gRPC port + 20.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Store } from "../../src/proto/metapb.js";
import { SchedulerCore } from "../../src/scheduler/core/core.js";
import { MemoryMetaKV } from "../../src/scheduler/core/meta-kv.js";
import { isDialableStatusAddr, statusAddrToRegister, storeStatusAddr } from "../../src/util/http-status.js";
import { ctlRun } from "../harness/ctl.js";
import { ProcessCluster } from "../harness/processes.js";
import { waitFor } from "../harness/wait.js";

describe("status addresses a store may register", () => {
  it("takes host:port others can dial and refuses wildcards, port 0, paths and user parts", () => {
    for (const ok of ["127.0.0.1:20180", "store-1.example:20180", "[::1]:20180"])
      expect(isDialableStatusAddr(ok), ok).toBe(true);
    for (const bad of ["0.0.0.0:20180", "[::]:20180", "h:0", "h:65536", "h", "h:x", "u@h:1", "h/x:1", "h:1/x", "a b:1"])
      expect(isDialableStatusAddr(bad), bad).toBe(false);
    expect(isDialableStatusAddr(`${"h".repeat(300)}:1`)).toBe(false);
  });

  it("registers a wildcard listen host as the gRPC advertise host, and falls back to the gRPC port + 20", () => {
    expect(statusAddrToRegister("0.0.0.0:9100", "10.0.0.5:20160")).toBe("10.0.0.5:9100");
    expect(statusAddrToRegister("127.0.0.1:9100", "10.0.0.5:20160")).toBe("127.0.0.1:9100");
    expect(statusAddrToRegister(undefined, "10.0.0.5:20160")).toBeUndefined();
    expect(storeStatusAddr({ address: "10.0.0.5:20160", statusAddress: "10.0.0.5:9100" })).toBe("10.0.0.5:9100");
    expect(storeStatusAddr({ address: "10.0.0.5:20160", statusAddress: "" })).toBe("10.0.0.5:20180");
  });

  it("the scheduler keeps a store's status address and refuses one nobody can dial", async () => {
    const core = await SchedulerCore.open(new MemoryMetaKV());
    try {
      await core.bootstrap(Store.create({ id: 1n, address: "127.0.0.1:20401" }));
      await core.putStore(Store.create({ id: 1n, address: "127.0.0.1:20401", statusAddress: "127.0.0.1:9100" }));
      expect(core.getStore(1n).meta.statusAddress).toBe("127.0.0.1:9100");
      await expect(
        core.putStore(Store.create({ id: 1n, address: "127.0.0.1:20401", statusAddress: "0.0.0.0:9100" })),
      ).rejects.toThrow(/status address "0.0.0.0:9100" is not a dialable host:port/);
      expect(core.getStore(1n).meta.statusAddress).toBe("127.0.0.1:9100");
    } finally {
      await core.close();
    }
  });
});

describe("stores whose status port is not their gRPC port + 20", () => {
  const cluster = new ProcessCluster();
  beforeAll(async () => {
    await cluster.startScheduler({ status: true });
    // addStore picks a free status port of its own, never the gRPC port + 20.
    for (const n of [1, 2]) await cluster.addStore(n, { status: true });
  }, 60_000);
  afterAll(() => cluster.shutdown());

  it("the dashboard scrapes each store at the status address it registered", async () => {
    await cluster.put("a", "1");
    type Data = { store_metrics: { status_addr: string; error?: string; metrics?: unknown }[] };
    const expected = [...cluster.stores.values()].map((s) => s.statusAddr).sort();
    const data = await waitFor(
      async () => {
        const res = await fetch(`http://${cluster.schedulerStatusAddr}/dashboard/data`);
        const d = (await res.json()) as Data;
        return d.store_metrics.length === 2 && d.store_metrics.every((s) => s.metrics) ? d : undefined;
      },
      { timeoutMs: 30_000, message: "/dashboard/data never showed both stores scraped" },
    );
    expect(data.store_metrics.map((s) => s.status_addr).sort()).toEqual(expected);
    expect(data.store_metrics.map((s) => s.error)).toEqual([undefined, undefined]);
  });

  it("tinykv-ctl metrics <store-id> reads the store's registered status address", async () => {
    const id = await cluster.storeIdOf(1);
    expect(id, "store 1 has no id yet").toBeDefined();
    const r = await ctlRun({ scheduler: cluster.schedulerAddr, status: cluster.schedulerStatusAddr }, [
      "metrics",
      String(id),
    ]);
    expect(r.error?.message).toBeUndefined();
    expect(r.out).toContain(`store metrics at http://${cluster.stores.get(1)!.statusAddr}/metrics`);
  });
});
