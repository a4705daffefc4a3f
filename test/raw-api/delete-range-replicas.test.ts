// DeleteRange on three replicas: every replica deletes the same keys. A leader may apply one
// region's entries in two batches of one turn (what committed before its own write, then what its
// write and the followers' answers committed meanwhile); a Put in the first batch and a
// DeleteRange over it in the second must delete the key on the leader too, as the followers do.
import { afterEach, describe, expect, it } from "vitest";
import { CF_DEFAULT } from "../../src/kv/engine/index.js";
import { rawKeyspace } from "../../src/kv/storage/raw-keyspace.js";
import { TestCluster } from "../harness/cluster.js";
import { seededRng, testSeed } from "../harness/rng.js";
import { waitFor } from "../harness/wait.js";
import { sleep, realRuntime } from "../../src/util/runtime.js";

const b = (s: string) => Buffer.from(s);

describe("DeleteRange on three replicas", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("leaves every replica with the same keys when a put and a range delete over it race", async () => {
    const seed = testSeed();
    const rng = seededRng(seed);
    const c = new TestCluster({ stores: 3, seed });
    cluster = c;
    await c.start();
    await c.put("warm", "up");
    const rounds = 200;
    for (let i = 0; i < rounds; i++) {
      const key = b(`r/${String(i).padStart(3, "0")}`);
      // Each round's range holds only its own key, so a key one replica failed to delete stays.
      const end = Buffer.concat([key, b("\0")]);
      const put = c.put(key, "v");
      // A range delete proposed a little after the put: sometimes the same turn, often the next.
      await sleep(realRuntime, Math.floor(rng() * 3));
      const del = c.onLeader(key, `delete range over ${key}`, (s, ctx) =>
        rawKeyspace(s).write(ctx, [{ kind: "deleteRange", cf: CF_DEFAULT, start: key, end }]),
      );
      await Promise.all([put, del]);
    }
    await c.put("done", "x");
    const storeKeys = async (id: bigint) => {
      const keys: string[] = [];
      for (let i = 0; i < rounds; i++) {
        const key = `r/${String(i).padStart(3, "0")}`;
        if ((await c.engineGet(id, key)) !== undefined) keys.push(key);
      }
      return keys.join(",");
    };
    // Wait until each store applied the last write, then compare what each holds of the range.
    for (const id of c.storeIds)
      await waitFor(async () => (await c.engineGet(id, "done")) !== undefined, {
        timeoutMs: 10_000,
        message: `store ${id} never applied the last write (seed ${seed})`,
      });
    const held = await Promise.all(c.storeIds.map(storeKeys));
    expect(
      new Set(held).size,
      `replicas differ (seed ${seed}): ${held.map((h, i) => `store ${i + 1}: [${h}]`).join("; ")}`,
    ).toBe(1);
  }, 60_000);
});
