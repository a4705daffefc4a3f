// Lab 1: TinyKV's kv/server/server_test.go scan cases, each on a fresh store so "limit 10"
// returns exactly what the test wrote: keys 1..4 set through storage, then one RawPut or
// RawDelete over gRPC, then a RawScan from key 1.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { StandaloneNode } from "../../src/cli/standalone-node.js";
import { startStandaloneServer } from "../../src/cli/standalone-node.js";
import { TinyKvRpc } from "../../src/client/kv-rpc.js";
import { CF_DEFAULT } from "../../src/kv/engine/index.js";
import { rawKeyspace } from "../../src/kv/storage/index.js";
import { silentLogger } from "../../src/util/logger.js";
import { tempDir } from "../harness/wait.js";

describe("lab1 raw scans after raw writes", () => {
  let dir: ReturnType<typeof tempDir>;
  let node: StandaloneNode;
  let client: TinyKvRpc;

  beforeEach(async () => {
    dir = tempDir();
    node = await startStandaloneServer({ path: dir.path, addr: "127.0.0.1:0", log: silentLogger });
    client = new TinyKvRpc(`127.0.0.1:${node.port}`);
    const storage = rawKeyspace(node.storage);
    for (const k of [1, 2, 3, 4]) {
      const value = Buffer.from([233, k]);
      await storage.write(undefined, [{ kind: "put", cf: CF_DEFAULT, key: Buffer.from([k]), value }]);
    }
  });
  afterEach(async () => {
    client.close();
    await node.stop();
    dir.cleanup();
  });

  /** What a scan from key 1 (limit 10) returns, as [key, value] byte lists. */
  async function scanFromOne(): Promise<Array<[number[], number[]]>> {
    const res = await client.rawScan({ startKey: Buffer.from([1]), limit: 10, cf: CF_DEFAULT });
    expect(res.error, "RawScan error").toBe("");
    expect(res.regionError, "RawScan region error").toBeUndefined();
    return res.kvs.map((kv) => [[...kv.key], [...kv.value]]);
  }

  it("TestRawScanAfterRawPut1: a key added by RawPut shows up in the next scan, in key order", async () => {
    const put = await client.rawPut({ key: Buffer.from([5]), value: Buffer.from([233, 5]), cf: CF_DEFAULT });
    expect(put.error).toBe("");
    expect(await scanFromOne()).toEqual([1, 2, 3, 4, 5].map((k) => [[k], [233, k]]));
  });

  it("TestRawScanAfterRawDelete1: a key removed by RawDelete is gone from the next scan", async () => {
    const del = await client.rawDelete({ key: Buffer.from([3]), cf: CF_DEFAULT });
    expect(del.error).toBe("");
    expect(await scanFromOne()).toEqual([1, 2, 4].map((k) => [[k], [233, k]]));
  });
});
