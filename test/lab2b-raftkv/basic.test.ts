import { afterEach, describe, expect, it } from "vitest";
import { TestCluster } from "../harness/cluster.js";
import { waitFor } from "../harness/wait.js";

describe("lab2b raft kv: basics", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("elects a leader and replicates puts to every store", async () => {
    cluster = new TestCluster({ stores: 3 });
    await cluster.start();
    await cluster.put("k1", "v1");
    expect((await cluster.get("k1"))?.toString()).toBe("v1");
    for (const id of cluster.storeIds) {
      await waitFor(async () => (await cluster!.engineGet(id, "k1"))?.toString() === "v1", {
        timeoutMs: 5000,
        message: `store ${id} never applied k1`,
      });
    }
    await cluster.delete("k1");
    expect(await cluster.get("k1")).toBeUndefined();
  });
});
