/** A value at the documented 8 MiB limit, with a key at its 8 KiB limit, fits one raft entry. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from "../../src/kv/server/limits.js";
import { TestCluster } from "../harness/cluster.js";

describe("the largest write a client may send", () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = new TestCluster({ stores: 3 });
    await cluster.start();
  });
  afterAll(() => cluster.shutdown());

  it("a max-size value under a max-size key is accepted and reads back", async () => {
    const key = Buffer.alloc(MAX_KEY_BYTES, 0x6b);
    const value = Buffer.alloc(MAX_VALUE_BYTES, 0x76);
    await cluster.put(key, value);
    const got = await cluster.get(key);
    expect(got?.length).toBe(MAX_VALUE_BYTES);
  });
});
