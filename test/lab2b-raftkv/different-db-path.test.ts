// TinyKV's kv/test_raftstore/cluster_test.go: the stores of a test cluster never share a data dir.
import { afterEach, describe, expect, it } from "vitest";
import { readStoreIdent } from "../../src/kv/raftstore/index.js";
import { TestCluster } from "../harness/cluster.js";
import { waitFor } from "../harness/wait.js";

describe("lab2b test cluster data dirs", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("TestDifferentDBPath: each of 5 stores has its own kv, raft and snapshot dirs and its own store ident", async () => {
    const c = (cluster = new TestCluster({ stores: 5 }));
    await c.start();
    const paths = new Map<string, string>();
    const claim = (path: string, owner: string) => {
      expect(paths.get(path), `${owner} uses ${path}`).toBeUndefined();
      paths.set(path, owner);
    };
    for (const id of c.storeIds) {
      const slot = c.slots.get(id)!;
      claim(slot.kv!.path, `store ${id} kv`);
      claim(slot.raft!.path, `store ${id} raft`);
      claim(c.store(id)!.snaps.dir, `store ${id} snapshots`);
      // Two stores on one engine would read one ident: each must find its own.
      expect((await readStoreIdent(slot.kv!))?.storeId, `the store ident in store ${id}'s kv engine`).toBe(id);
    }
    expect(paths.size).toBe(15);
    // A write reaches each store's own engine.
    await c.put("k", "v");
    for (const id of c.storeIds) {
      await waitFor(async () => (await c.engineGet(id, "k"))?.toString() === "v", {
        timeoutMs: 5_000,
        message: `store ${id}'s engine never got k`,
      });
    }
  });
});
