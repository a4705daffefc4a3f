// The BatchCommands stream (tinykv-ts extension, TiKV's rpc) against a real standalone server:
// its sub-requests get the answers their unary rpcs give, many share one stream, and garbage gets
// error answers without ending it.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StandaloneNode } from "../../src/cli/standalone-node.js";
import { startStandaloneServer } from "../../src/cli/standalone-node.js";
import type { KvConnection } from "../../src/client/kv-connection.js";
import { BatchedKvRpc } from "../../src/client/kv-batch-rpc.js";
import { TinyKvRpc } from "../../src/client/kv-rpc.js";
import { Op } from "../../src/proto/kvrpcpb.js";
import { BatchCommandsRequest, BatchCommandsResponse } from "../../src/proto/tinykvpb.js";
import { silentLogger } from "../../src/util/logger.js";
import { tempDir, waitFor } from "../harness/wait.js";

const b = (s: string) => Buffer.from(s);

/** Wire form of a message, with Buffers and bigints spelled out, and the key prefix taken away. */
function normalized(value: unknown, prefix: string): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === "bigint") return `${v}n`;
    if (v && typeof v === "object" && (v as { type?: string }).type === "Buffer")
      return Buffer.from((v as { data: number[] }).data)
        .toString()
        .replaceAll(prefix, "<p>");
    if (typeof v === "string") return v.replaceAll(prefix, "<p>");
    return v;
  });
}

/** Raw requests of every kind, bad ones included; returns every answer. */
async function rawScript(c: KvConnection, p: string): Promise<unknown[]> {
  const out: unknown[] = [];
  out.push(await c.rawPut({ key: b(`${p}a`), value: b("1") }));
  out.push(await c.rawPut({ key: b(`${p}b`), value: b("2"), cf: "write" }));
  out.push(await c.rawGet({ key: b(`${p}a`) }));
  out.push(await c.rawGet({ key: b(`${p}missing`) }));
  out.push(await c.rawGet({ key: b(`${p}b`), cf: "write" }));
  out.push(await c.rawScan({ startKey: b(p), endKey: b(`${p}z`), limit: 10 }));
  out.push(await c.rawDelete({ key: b(`${p}a`) }));
  out.push(await c.rawGet({ key: b(`${p}a`) }));
  // Refused by validation: empty key, unknown CF, inverted range, zero limit.
  out.push(await c.rawPut({ key: Buffer.alloc(0), value: b("x") }));
  out.push(await c.rawGet({ key: b(`${p}a`), cf: "nope" }));
  out.push(await c.rawScan({ startKey: b(`${p}z`), endKey: b(p), limit: 10 }));
  out.push(await c.rawScan({ startKey: b(p), limit: 0 }));
  return out;
}

/** A transaction's life in every txn rpc: prewrite, a read meeting its lock, status, commit, reads, cleanup. */
async function txnScript(c: KvConnection, p: string): Promise<unknown[]> {
  const out: unknown[] = [];
  const ts = BigInt(Date.now()) << 18n;
  const k1 = b(`${p}k1`);
  const k2 = b(`${p}k2`);
  const mutations = [
    { op: Op.Put, key: k1, value: b("v1") },
    { op: Op.Put, key: k2, value: b("v2") },
  ];
  out.push(await c.kvPrewrite({ mutations, primaryLock: k1, startVersion: ts, lockTtl: 3000n }));
  out.push(await c.kvGet({ key: k1, version: ts + 5n }));
  out.push(await c.kvTxnHeartBeat({ primaryLock: k1, startVersion: ts, adviseLockTtl: 6000n }));
  out.push(await c.kvCheckTxnStatus({ primaryKey: k1, lockTs: ts, currentTs: ts + 6n }));
  out.push(await c.kvCommit({ startVersion: ts, keys: [k1], commitVersion: ts + 10n }));
  out.push(await c.kvResolveLock({ startVersion: ts, commitVersion: ts + 10n }));
  out.push(await c.kvGet({ key: k2, version: ts + 20n }));
  out.push(await c.kvScan({ startKey: b(p), limit: 2, version: ts + 20n }));
  // A second transaction, rolled back; then a prewrite of it is refused.
  out.push(await c.kvPrewrite({ mutations: [mutations[0]!], primaryLock: k1, startVersion: ts + 30n, lockTtl: 3000n }));
  out.push(await c.kvBatchRollback({ startVersion: ts + 30n, keys: [k1] }));
  out.push(await c.kvPrewrite({ mutations: [mutations[0]!], primaryLock: k1, startVersion: ts + 30n, lockTtl: 3000n }));
  out.push(await c.kvCheckTxnStatus({ primaryKey: k1, lockTs: ts + 30n, currentTs: ts + 40n }));
  out.push(await c.kvGet({ key: Buffer.alloc(0), version: ts }).catch((e: { code?: number }) => `status ${e.code}`));
  return out;
}

/** A client of BatchCommands that sends raw bytes, to speak garbage. */
function rawStream(addr: string) {
  const client = new grpc.Client(addr, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(
    "/tinykvpb.TinyKv/BatchCommands",
    (bytes: Buffer) => bytes,
    (bytes: Buffer) => BatchCommandsResponse.decode(bytes),
  );
  const answers = new Map<bigint, BatchCommandsResponse["responses"][number]>();
  let ended: grpc.StatusObject | undefined;
  call.on("data", (m: BatchCommandsResponse) => {
    for (let i = 0; i < m.requestIds.length; i++) answers.set(m.requestIds[i]!, m.responses[i]!);
  });
  call.on("error", () => undefined); // the status below says it
  call.on("status", (s: grpc.StatusObject) => {
    ended = s;
  });
  return {
    call,
    answers,
    ended: () => ended,
    close: () => {
      call.cancel();
      client.close();
    },
  };
}

/** A protobuf field header (varint of number << 3 | wire type) then a length-delimited payload. */
function field(num: number, payload: Buffer): Buffer {
  const header: number[] = [];
  let tag = (num << 3) | 2;
  while (tag > 0x7f) {
    header.push((tag & 0x7f) | 0x80);
    tag >>>= 7;
  }
  header.push(tag);
  return Buffer.concat([Buffer.from(header), Buffer.from([payload.length]), payload]);
}

describe("BatchCommands stream on a standalone server", () => {
  let dir: ReturnType<typeof tempDir>;
  let node: StandaloneNode;
  let addr: string;
  let unary: TinyKvRpc;
  let stream: BatchedKvRpc;

  beforeAll(async () => {
    dir = tempDir();
    node = await startStandaloneServer({ path: dir.path, addr: "127.0.0.1:0", log: silentLogger });
    addr = `127.0.0.1:${node.port}`;
    unary = new TinyKvRpc(addr, 5000);
    stream = new BatchedKvRpc(addr, 5000);
  });
  afterAll(async () => {
    unary.close();
    stream.close();
    await node.stop();
    dir.cleanup();
  });

  it("raw requests get the same answers over the stream as by unary rpcs", async () => {
    const byUnary = await rawScript(unary, "raw-unary/");
    const byStream = await rawScript(stream, "raw-stream/");
    expect(stream.mode).toBe("stream");
    expect(normalized(byStream, "raw-stream/")).toBe(normalized(byUnary, "raw-unary/"));
  });

  it("txn requests get the same answers over the stream as by unary rpcs", async () => {
    const byUnary = await txnScript(unary, "txn-unary/");
    const byStream = await txnScript(stream, "txn-stream/");
    expect(stream.mode).toBe("stream");
    // Timestamps differ between the runs by the ms they started at; compare the shapes otherwise.
    const shape = (v: unknown[], p: string) => normalized(v, p).replace(/"\d+n"/g, '"<ts>"');
    expect(shape(byStream, "txn-stream/")).toBe(shape(byUnary, "txn-unary/"));
  });

  it("a thousand concurrent requests share one stream and each gets its own answer", async () => {
    const n = 1000;
    const keys = Array.from({ length: n }, (_, i) => b(`many/${i}`));
    const puts = await Promise.all(keys.map((key, i) => stream.rawPut({ key, value: b(`v${i}`) })));
    expect(puts.filter((r) => r.error || r.regionError)).toEqual([]);
    const gets = await Promise.all(keys.map((key) => stream.rawGet({ key })));
    expect(gets.map((g) => g.value.toString())).toEqual(keys.map((_, i) => `v${i}`));
    expect(stream.mode).toBe("stream");
  });

  it("garbage sub-requests get error answers and the stream goes on serving", async () => {
    const s = rawStream(addr);
    try {
      const good = BatchCommandsRequest.encode({
        requestIds: [5n],
        requests: [{ RawGet: { key: b("many/7"), cf: "" } }],
      }).finish();
      const garbage = BatchCommandsRequest.encode({
        requestIds: [1n, 2n, 3n],
        requests: [
          {}, // no kind at all
          { RawGet: { key: b("x"), cf: "" }, Get: { key: b("x"), version: 1n } }, // two kinds
          { RawPut: { key: Buffer.alloc(0), value: b("v"), cf: "", ttl: 0n } }, // refused by validation, as unary
        ],
      }).finish();
      // A kind this server does not know (field 99 of Request), by the wire.
      const unknownKind = Buffer.concat([field(1, field(99, b("whatever"))), Buffer.from([0x10, 4])]);
      s.call.write(Buffer.from(garbage));
      s.call.write(unknownKind);
      s.call.write(Buffer.from(good));
      await waitFor(() => s.answers.size === 5, { timeoutMs: 5000, message: "five answers on the raw stream" });
      expect(s.answers.get(1n)?.Error?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(s.answers.get(2n)?.Error?.message).toMatch(/two kinds/);
      expect(s.answers.get(3n)?.RawPut?.error).toMatch(/key must not be empty/);
      expect(s.answers.get(4n)?.Error?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(s.answers.get(5n)?.RawGet?.value.toString()).toBe("v7");
      expect(s.ended()).toBeUndefined();
    } finally {
      s.close();
    }
  });

  it("a message that cannot be answered request by request ends its stream with a clear status; the server serves on", async () => {
    const mismatched = rawStream(addr);
    const undecodable = rawStream(addr);
    try {
      mismatched.call.write(
        Buffer.from(BatchCommandsRequest.encode({ requestIds: [1n, 2n], requests: [{}] }).finish()),
      );
      undecodable.call.write(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]));
      const a = await waitFor(() => mismatched.ended(), { timeoutMs: 5000, message: "the mismatched stream to end" });
      expect(a.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(a.details).toMatch(/1 requests but 2 request ids/);
      const u = await waitFor(() => undecodable.ended(), { timeoutMs: 5000, message: "the undecodable stream to end" });
      expect(u.code).not.toBe(grpc.status.OK);
    } finally {
      mismatched.close();
      undecodable.close();
    }
    expect((await stream.rawGet({ key: b("many/8") })).value.toString()).toBe("v8");
  });
});

describe("BatchCommands and a graceful shutdown", () => {
  it("stopping a server ends its open streams instead of waiting out the grace period", async () => {
    const dir = tempDir();
    const node = await startStandaloneServer({ path: dir.path, addr: "127.0.0.1:0", log: silentLogger });
    const c = new BatchedKvRpc(`127.0.0.1:${node.port}`, 5000);
    try {
      await c.rawPut({ key: b("k"), value: b("v") });
      expect(c.mode).toBe("stream");
      let stopped = false;
      const stop = node.stop().then(() => {
        stopped = true;
      });
      // The grace period is 5 s; a stream left open would hold the stop for all of it.
      await waitFor(() => stopped, { timeoutMs: 3000, message: "stop() to return with a stream open" });
      await stop;
      expect(c.mode).toBe("unary");
    } finally {
      c.close();
      dir.cleanup();
    }
  });
});

describe("BatchCommands and the store's metrics", () => {
  it("sub-requests are counted by method and outcome, as unary rpcs are", async () => {
    const dir = tempDir();
    const node = await startStandaloneServer({
      path: dir.path,
      addr: "127.0.0.1:0",
      statusAddr: "127.0.0.1:0",
      log: silentLogger,
    });
    const c = new BatchedKvRpc(`127.0.0.1:${node.port}`, 5000);
    try {
      await Promise.all([1, 2, 3].map((i) => c.rawPut({ key: b(`k${i}`), value: b("v") })));
      await c.rawPut({ key: Buffer.alloc(0), value: b("v") });
      expect(c.mode).toBe("stream");
      const text = await (await fetch(`http://${node.statusAddr}/metrics`)).text();
      const count = (labels: string) =>
        Number(new RegExp(`^tinykv_grpc_requests_total\\{${labels}\\} (\\d+)$`, "m").exec(text)?.[1]);
      expect(count('method="RawPut",outcome="ok"')).toBe(3);
      expect(count('method="RawPut",outcome="error"')).toBe(1);
    } finally {
      c.close();
      await node.stop();
      dir.cleanup();
    }
  });
});
