// KvClient.close() while an operation is in flight. close() closes the store
// connections (the BatchCommands stream fails what it owes, UNAVAILABLE), and the operation's
// retry loop, which knows nothing of close, routes again: the region cache makes a NEW connection
// to the store after close (never closed: a leaked channel), sends the request again, and the
// operation runs on until its deadline instead of failing at once. In-process store, no cluster.
import type * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { KvConnectionFactory } from "../../src/client/index.js";
import { BatchedKvRpc, KvClient } from "../../src/client/index.js";
import { createTinyKvService, listenTinyKv, RawHandlers, TxnHandlers } from "../../src/kv/server/index.js";
import { StandaloneStorage } from "../../src/kv/storage/index.js";
import { silentLogger } from "../../src/util/logger.js";
import { tempDir, waitFor } from "../harness/wait.js";
import { oneRegionScheduler, wholeRegion } from "./fake-scheduler.js";

const REGION = wholeRegion([1n]);

type Handler = grpc.handleUnaryCall<unknown, unknown>;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("close() with an operation in flight", () => {
  it("fails the operation promptly and makes no connection after close", async () => {
    const dir = tempDir("tinykv-review-close-");
    const storage = new StandaloneStorage(dir.path);
    await storage.start();
    const service = createTinyKvService({
      raw: new RawHandlers(storage),
      txn: new TxnHandlers(storage),
      log: silentLogger,
    });
    // The store never answers a get (a slow store): the get is in flight when the client closes.
    let gets = 0;
    (service as unknown as Record<string, Handler>).rawGet = () => {
      gets++;
    };
    const { server, port } = await listenTinyKv(service, "127.0.0.1:0");
    cleanups.push(async () => {
      server.forceShutdown();
      await storage.stop();
      dir.cleanup();
    });

    const conns: BatchedKvRpc[] = [];
    const connectKv: KvConnectionFactory = (addr, timeoutMs) => {
      const c = new BatchedKvRpc(addr, timeoutMs);
      conns.push(c);
      return c;
    };
    const client = KvClient.withScheduler(
      oneRegionScheduler(REGION, () => `127.0.0.1:${port}`),
      { connectKv, timeoutMs: 10_000, rpcTimeoutMs: 5000, backoff: { initialMs: 5, maxMs: 50 } },
    );
    cleanups.push(() => {
      for (const c of conns) c.close();
    });

    const settled = client.get("k").then(
      () => "resolved",
      (e: unknown) => `rejected: ${String(e)}`,
    );
    await waitFor(() => gets === 1, { timeoutMs: 5000, message: "the get to reach the store" });
    const closedAt = Date.now();
    client.close();
    const outcome = await Promise.race([settled, new Promise((r) => setTimeout(() => r("still pending"), 1500))]);
    const after = { outcome, msToSettle: Date.now() - closedAt, connections: conns.length, getsAtStore: gets };
    expect(after.outcome, JSON.stringify(after)).not.toBe("still pending");
    expect(after.connections, `connections made (one after close() is never closed): ${JSON.stringify(after)}`).toBe(1);
    expect(after.getsAtStore, `the get was sent again after close(): ${JSON.stringify(after)}`).toBe(1);
  });
});
