/**
 * The server accepts values up to MAX_VALUE_BYTES (8 MiB) and answers messages up to
 * MAX_GRPC_MESSAGE_BYTES (16 MiB), but the client's connection (TinyKvRpc, which KvClient's
 * region cache uses for every store) kept grpc-js's default receive limit of 4 MiB: a value between
 * 4 and 8 MiB is written and committed fine, and then no KvGet (or RawGet) can ever read it back.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_VALUE_BYTES } from "../../src/kv/server/limits.js";
import { Op } from "../../src/proto/kvrpcpb.js";
import type { TxnServer } from "../lab4-txn/txn-server.js";
import { b, startTxnServer } from "../lab4-txn/txn-server.js";

let srv: TxnServer;
beforeAll(async () => {
  srv = await startTxnServer();
});
afterAll(() => srv.stop());

describe("a max-size value reads back through the client's connection", () => {
  it("KvGet of a committed 8 MiB value", async () => {
    const value = Buffer.alloc(MAX_VALUE_BYTES, 7);
    const pre = await srv.client.kvPrewrite({
      startVersion: 100n,
      primaryLock: b(1),
      lockTtl: 1000n,
      mutations: [{ op: Op.Put, key: b(1), value }],
    });
    expect(pre.errors).toEqual([]);
    expect(
      (await srv.client.kvCommit({ startVersion: 100n, commitVersion: 110n, keys: [b(1)] })).error,
    ).toBeUndefined();

    const got = await srv.client.kvGet({ key: b(1), version: 120n }).then(
      (r) => r,
      (e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`,
    );
    expect(typeof got === "string" ? got : "answered").toBe("answered");
    if (typeof got !== "string") expect(got.value.equals(value)).toBe(true);
  });

  it("RawGet of an 8 MiB value", async () => {
    const value = Buffer.alloc(MAX_VALUE_BYTES, 9);
    expect((await srv.client.rawPut({ key: b(2), value, cf: "default" })).error).toBe("");
    const got = await srv.client.rawGet({ key: b(2), cf: "default" }).then(
      (r) => r,
      (e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`,
    );
    expect(typeof got === "string" ? got : "answered").toBe("answered");
    if (typeof got !== "string") expect(got.value.equals(value)).toBe(true);
  });
});
