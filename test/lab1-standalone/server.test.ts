import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RawKeyspace } from "../../src/kv/storage/index.js";
import { rawKeyspace } from "../../src/kv/storage/index.js";
import { MAX_VALUE_BYTES } from "../../src/kv/server/index.js";
import type { StandaloneNode } from "../../src/cli/standalone-node.js";
import { startStandaloneServer } from "../../src/cli/standalone-node.js";
import { CF_DEFAULT, CF_WRITE } from "../../src/kv/engine/index.js";
import { TinyKvRpc } from "../../src/client/kv-rpc.js";
import { silentLogger } from "../../src/util/logger.js";
import { call } from "../harness/grpc.js";
import { tempDir } from "../harness/wait.js";

const b = (s: string) => Buffer.from(s);

describe("lab1 standalone server over gRPC", () => {
  let dir: ReturnType<typeof tempDir>;
  /** The node's storage as the raw API sees it (raw data has its own CFs). */
  let storage: RawKeyspace;
  let node: StandaloneNode;
  let client: TinyKvRpc;

  const put = (key: string, value: string, cf = "") => client.rawPut({ key: b(key), value: b(value), cf });
  const get = (key: string, cf = "") => client.rawGet({ key: b(key), cf });
  const del = (key: string, cf = "") => client.rawDelete({ key: b(key), cf });
  const scan = (start: string, limit: number, cf = "", end = "") =>
    client.rawScan({ startKey: b(start), limit, cf, endKey: b(end) });

  beforeAll(async () => {
    dir = tempDir();
    node = await startStandaloneServer({ path: dir.path, addr: "127.0.0.1:0", log: silentLogger });
    storage = rawKeyspace(node.storage);
    client = new TinyKvRpc(`127.0.0.1:${node.port}`);
  });
  afterAll(async () => {
    client.close();
    await node.stop();
    dir.cleanup();
  });

  it("TestRawGet1: a value written through storage is returned by RawGet", async () => {
    await storage.write(undefined, [{ kind: "put", cf: CF_DEFAULT, key: b("42"), value: b("v42") }]);
    const res = await get("42", "default");
    expect(res.notFound).toBe(false);
    expect(res.value.toString()).toBe("v42");
  });

  it("TestRawGetNotFound1: a missing key is not_found, not an error", async () => {
    const res = await get("missing");
    expect(res.notFound).toBe(true);
    expect(res.error).toBe("");
  });

  it("TestRawPut1 / TestRawGetAfterRawPut1: puts are visible and CFs are independent", async () => {
    await put("p1", "in-default", "default");
    await put("p1", "in-write", "write");
    expect((await get("p1", "default")).value.toString()).toBe("in-default");
    expect((await get("p1", "write")).value.toString()).toBe("in-write");
    const reader = await storage.reader(undefined);
    expect((await reader.getCF(CF_WRITE, b("p1")))?.toString()).toBe("in-write");
    await reader.close();
  });

  it("overwrites a key", async () => {
    await put("ow", "1");
    await put("ow", "2");
    expect((await get("ow")).value.toString()).toBe("2");
  });

  it("TestRawDelete1 / TestRawGetAfterRawDelete1: a deleted key is gone", async () => {
    await put("d1", "x");
    await del("d1");
    expect((await get("d1")).notFound).toBe(true);
    const reader = await storage.reader(undefined);
    expect(await reader.getCF(CF_DEFAULT, b("d1"))).toBeUndefined();
    await reader.close();
  });

  it("TestRawScan1: scan honours start and limit, sees puts, skips deletes", async () => {
    for (let i = 1; i <= 5; i++) await put(`s${i}`, `v${i}`, "lock");
    let res = await scan("s1", 3, "lock");
    expect(res.kvs.map((kv) => `${kv.key}=${kv.value}`)).toEqual(["s1=v1", "s2=v2", "s3=v3"]);
    res = await scan("s3", 10, "lock");
    expect(res.kvs.map((kv) => kv.key.toString())).toEqual(["s3", "s4", "s5"]);
    await del("s3", "lock");
    res = await scan("s1", 10, "lock");
    expect(res.kvs.map((kv) => kv.key.toString())).toEqual(["s1", "s2", "s4", "s5"]);
    res = await scan("s1", 10, "lock", "s4");
    expect(res.kvs.map((kv) => kv.key.toString())).toEqual(["s1", "s2"]);
    // The CF "default" holds none of these.
    res = await scan("s1", 10, "default");
    expect(res.kvs.filter((kv) => kv.key.toString().startsWith("s"))).toEqual([]);
  });

  it("TestIterWithRawDelete1: a reader opened before a delete still sees the key", async () => {
    await put("it1", "x");
    const reader = await storage.reader(undefined);
    await del("it1");
    const cursor = reader.iterCF(CF_DEFAULT);
    await cursor.seek(b("it1"));
    expect(cursor.valid && cursor.key.toString()).toBe("it1");
    await cursor.close();
    await reader.close();
  });

  it("1,000 concurrent puts are all readable afterwards", async () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `c${String(i).padStart(4, "0")}`);
    const results = await Promise.all(keys.map((k) => put(k, `value-${k}`, "write")));
    expect(results.every((r) => r.error === "" && r.regionError === undefined)).toBe(true);
    const res = await scan("c", 2000, "write", "d");
    expect(res.kvs.length).toBe(1000);
    expect(res.kvs.every((kv) => kv.value.toString() === `value-${kv.key}`)).toBe(true);
  });

  describe("bad input: a clear error, nothing written, the server keeps serving", () => {
    it("empty key on put, delete and get", async () => {
      expect((await put("", "v")).error).toMatch(/key must not be empty/);
      expect((await del("")).error).toMatch(/key must not be empty/);
      expect((await get("")).error).toMatch(/key must not be empty/);
    });

    it("unknown CF", async () => {
      expect((await put("k", "v", "nope")).error).toMatch(/unknown column family "nope"/);
      expect((await get("k", "nope")).error).toMatch(/unknown column family/);
      expect((await scan("k", 1, "nope")).error).toMatch(/unknown column family/);
      expect((await get("k")).notFound).toBe(true);
    });

    it("a value over the size limit", async () => {
      const res = await client.rawPut({ key: b("big"), value: Buffer.alloc(MAX_VALUE_BYTES + 1) });
      expect(res.error).toMatch(/the limit is/);
      expect((await get("big")).notFound).toBe(true);
    });

    it("limit 0 and an inverted or empty range", async () => {
      expect((await scan("a", 0)).error).toMatch(/limit must be at least 1/);
      expect((await scan("z", 10, "", "a")).error).toMatch(/empty or inverted/);
      expect((await scan("a", 10, "", "a")).error).toMatch(/empty or inverted/);
    });

    it("still serves after all of that", async () => {
      await put("alive", "yes");
      expect((await get("alive")).value.toString()).toBe("yes");
    });
  });

  it("answers transactional rpcs it does not serve with UNIMPLEMENTED or a real answer", async () => {
    const raw = client.client;
    const res = await call(raw, raw.coprocessor, { ranges: [], data: b(""), tp: 0n, startTs: 0n }).catch(
      (e: grpc.ServiceError) => e,
    );
    expect((res as grpc.ServiceError).code).toBe(grpc.status.UNIMPLEMENTED);
  });
});
