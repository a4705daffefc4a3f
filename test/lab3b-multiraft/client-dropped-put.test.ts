// a unary raw put whose connection drops AFTER the store received (and applied) it
// comes back as gRPC UNAVAILABLE ("Connection dropped"). The sender treats every UNAVAILABLE as
// "store not reached" and sends the put again to the next peer, so the write is applied twice and
// put() resolves as if nothing happened; it must fail with KvOutcomeUnknownError instead (as
// compareAndSwap already does for the same drop). In-process stores, no cluster.
import type * as grpc from "@grpc/grpc-js";
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { KvClient, KvOutcomeUnknownError } from "../../src/client/index.js";
import { createTinyKvService, listenTinyKv, RawHandlers, TxnHandlers } from "../../src/kv/server/index.js";
import { StandaloneStorage } from "../../src/kv/storage/index.js";
import { silentLogger } from "../../src/util/logger.js";
import { tempDir } from "../harness/wait.js";
import { oneRegionScheduler, wholeRegion } from "./fake-scheduler.js";

const REGION = wholeRegion([1n, 2n]);

type Handler = grpc.handleUnaryCall<unknown, unknown>;

interface Store {
  addr: string;
  puts: number;
  server: grpc.Server;
  stop(): Promise<void>;
}

/**
 * A store over its own StandaloneStorage, reached through a TCP proxy; with `dropAfterPut`, it
 * applies a put, then the connection drops (the machine died, the network cut) before the answer.
 */
async function startStore(dropAfterPut: boolean): Promise<Store> {
  const dir = tempDir("tinykv-review-put-");
  const storage = new StandaloneStorage(dir.path);
  await storage.start();
  const service = createTinyKvService({
    raw: new RawHandlers(storage),
    txn: new TxnHandlers(storage),
    log: silentLogger,
  });
  const handlers = service as unknown as Record<string, Handler>;
  const inner = handlers.rawPut!;
  const store = { puts: 0 } as Store;
  handlers.rawPut = (call, callback) => {
    store.puts++;
    if (!dropAfterPut) return inner(call, callback);
    // Applied, then the connection drops before the answer leaves.
    inner(call, () => {
      for (const s of sockets) s.destroy();
    });
  };
  const { server, port } = await listenTinyKv(service, "127.0.0.1:0");
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((down) => {
    const up = net.connect(port, "127.0.0.1");
    for (const s of [down, up]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => {
        sockets.delete(s);
        down.destroy();
        up.destroy();
      });
    }
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  store.server = server;
  store.addr = `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  store.stop = async () => {
    for (const s of sockets) s.destroy();
    proxy.close();
    server.forceShutdown();
    await storage.stop();
    dir.cleanup();
  };
  return store;
}

const stores: Store[] = [];
let client: KvClient | undefined;
afterEach(async () => {
  client?.close();
  client = undefined;
  for (const s of stores.splice(0)) await s.stop();
});

describe("a unary put whose connection dropped after it was sent", () => {
  it("fails as outcome unknown and is not sent again to another peer", async () => {
    const s1 = await startStore(true);
    const s2 = await startStore(false);
    stores.push(s1, s2);
    client = KvClient.withScheduler(
      oneRegionScheduler(REGION, (id) => (id === 1n ? s1.addr : s2.addr)),
      { batchCommands: false, timeoutMs: 5000, rpcTimeoutMs: 2000, backoff: { initialMs: 5, maxMs: 50 } },
    );
    const err = await client.put("k", "v").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(s1.puts, "store 1 received the put and applied it").toBe(1);
    expect(
      { error: err instanceof KvOutcomeUnknownError ? "KvOutcomeUnknownError" : String(err), putsAtStore2: s2.puts },
      "the put applied at store 1 was sent again to store 2 and put() reported success",
    ).toEqual({ error: "KvOutcomeUnknownError", putsAtStore2: 0 });
  });
});
