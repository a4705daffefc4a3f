// The client over BatchCommands (one stream per store) against in-process stores: a store
// without the rpc gets unary rpcs, a store restarting mid-stream gives the errors a broken unary
// call gives and the client recovers, and a stream with too much pending stops being read.
import type * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { KvConnectionFactory } from "../../src/client/index.js";
import { BatchedKvRpc, KvClient, KvOutcomeUnknownError } from "../../src/client/index.js";
import {
  createTinyKvService,
  listenTinyKv,
  MAX_BATCH_IN_FLIGHT,
  MAX_BATCH_MESSAGE_REQUESTS,
  RawHandlers,
  TxnHandlers,
} from "../../src/kv/server/index.js";
import { StandaloneStorage } from "../../src/kv/storage/index.js";
import type { TinyKvServer } from "../../src/proto/tinykvpb.js";
import { oneRegionScheduler, wholeRegion } from "./fake-scheduler.js";
import { silentLogger } from "../../src/util/logger.js";
import { tempDir, waitFor } from "../harness/wait.js";

const b = (s: string) => Buffer.from(s);

/** Every key in one region with one peer, on store 1. */
const REGION = wholeRegion([1n]);

type Handler = grpc.handleUnaryCall<unknown, unknown>;

/**
 * A store over a StandaloneStorage whose rpcs can be held (requests wait, counted, until
 * released) and which can be killed and started again on the same port.
 */
class HoldableStore {
  readonly held: (() => void)[] = [];
  readonly calls = new Map<string, number>();
  private readonly holding = new Set<string>();
  private server: grpc.Server | undefined;
  port = 0;

  private constructor(
    readonly service: TinyKvServer,
    private readonly storage: StandaloneStorage,
    private readonly cleanup: () => void,
  ) {
    const handlers = service as unknown as Record<string, Handler>;
    for (const rpc of ["rawGet", "rawPut", "kvPrewrite", "kvCommit", "kvGet"]) {
      const inner = handlers[rpc]!;
      handlers[rpc] = (call, callback) => {
        this.calls.set(rpc, (this.calls.get(rpc) ?? 0) + 1);
        if (this.holding.has(rpc)) this.held.push(() => inner(call, callback));
        else inner(call, callback);
      };
    }
  }

  static async start(opts: { batchCommands: boolean }): Promise<HoldableStore> {
    const dir = tempDir("tinykv-batch-client-");
    const storage = new StandaloneStorage(dir.path);
    await storage.start();
    const service = createTinyKvService({
      raw: new RawHandlers(storage),
      txn: new TxnHandlers(storage),
      log: silentLogger,
    });
    // An old server: grpc-js answers an rpc the service lacks with UNIMPLEMENTED.
    if (!opts.batchCommands) delete (service as Partial<TinyKvServer>).batchCommands;
    const store = new HoldableStore(service, storage, dir.cleanup);
    await store.listen();
    return store;
  }

  get addr(): string {
    return `127.0.0.1:${this.port}`;
  }

  async listen(): Promise<void> {
    const { server, port } = await listenTinyKv(this.service, `127.0.0.1:${this.port}`);
    this.server = server;
    this.port = port;
  }

  /** Requests of `rpc` wait from now on (until release). */
  hold(rpc: string): void {
    this.holding.add(rpc);
  }

  release(): void {
    this.holding.clear();
    for (const serve of this.held.splice(0)) serve();
  }

  /** The process dies: connections drop, held requests are never served. */
  kill(): void {
    this.holding.clear();
    this.held.splice(0);
    this.server?.forceShutdown();
  }

  async stop(): Promise<void> {
    this.kill();
    await this.storage.stop();
    this.cleanup();
  }
}

let store: HoldableStore | undefined;
let client: KvClient | undefined;
afterEach(async () => {
  client?.close();
  client = undefined;
  await store?.stop();
  store = undefined;
});

/** A client whose connections are kept, so a test can see whether they use the stream. */
function clientOf(s: HoldableStore, timeoutMs = 8000) {
  const conns: BatchedKvRpc[] = [];
  const connectKv: KvConnectionFactory = (addr, rpcTimeoutMs) => {
    const c = new BatchedKvRpc(addr, rpcTimeoutMs);
    conns.push(c);
    return c;
  };
  client = KvClient.withScheduler(
    oneRegionScheduler(REGION, () => s.addr),
    {
      connectKv,
      timeoutMs,
      rpcTimeoutMs: 2000,
      backoff: { initialMs: 5, maxMs: 100 },
    },
  );
  return { kv: client, conns };
}

describe("client over BatchCommands", () => {
  it("falls back to unary rpcs for a store without BatchCommands, sending each request once", async () => {
    store = await HoldableStore.start({ batchCommands: false });
    const { kv, conns } = clientOf(store);
    // All of these are sent before the store's UNIMPLEMENTED comes back.
    await Promise.all(Array.from({ length: 50 }, (_, i) => kv.put(`k${i}`, `v${i}`)));
    expect(store.calls.get("rawPut")).toBe(50);
    expect(await kv.get("k7")).toEqual(b("v7"));
    const txn = await kv.begin();
    txn.put("t", "1");
    await txn.commit();
    expect(await (await kv.begin()).get("t")).toEqual(b("1"));
    expect(conns.map((c) => c.mode)).toEqual(["unary"]);
  });

  it("a store killed mid-stream: a pending write's outcome is unknown, a pending read is retried, the stream comes back", async () => {
    store = await HoldableStore.start({ batchCommands: true });
    const s = store;
    const { kv, conns } = clientOf(s);
    await kv.put("a", "1");
    expect(conns[0]!.mode).toBe("stream");

    s.hold("rawPut");
    s.hold("rawGet");
    const put = kv.put("b", "2").catch((e: unknown) => e);
    const get = kv.get("a");
    await waitFor(() => s.held.length === 2, { timeoutMs: 5000, message: "the put and the get to reach the store" });
    s.kill();
    expect(await put).toBeInstanceOf(KvOutcomeUnknownError);

    await s.listen();
    expect(await get, "the read retried after the restart").toEqual(b("1"));
    // The put never applied (the store died holding it); a read tells.
    expect(await kv.get("b")).toBeUndefined();
    await kv.put("c", "3");
    await waitFor(
      async () => {
        await kv.get("c");
        return conns[0]!.mode === "stream";
      },
      { timeoutMs: 5000, message: "the client to open the stream again after its backoff" },
    );
    expect(await kv.get("c")).toEqual(b("3"));
  });

  it("a stream with too many pending sub-requests stops being read until they are answered", async () => {
    store = await HoldableStore.start({ batchCommands: true });
    const s = store;
    const conn = new BatchedKvRpc(s.addr, 20_000);
    try {
      await conn.rawPut({ key: b("k"), value: b("v") });
      s.hold("rawGet");
      const n = 3000;
      const gets = Promise.all(Array.from({ length: n }, () => conn.rawGet({ key: b("k") })));
      await waitFor(() => s.held.length >= MAX_BATCH_IN_FLIGHT, {
        timeoutMs: 10_000,
        message: `${MAX_BATCH_IN_FLIGHT} reads to reach the store`,
      });
      // Give a stream that does not stop reading the time to take more.
      await new Promise((r) => setTimeout(r, 300));
      expect(s.held.length).toBeLessThanOrEqual(MAX_BATCH_IN_FLIGHT + MAX_BATCH_MESSAGE_REQUESTS);
      s.release();
      // Reads resumed: the rest arrive, and are served at once now.
      const answers = await gets;
      expect(answers.every((a) => a.value.toString() === "v")).toBe(true);
      expect(s.calls.get("rawGet")).toBe(n);
    } finally {
      conn.close();
    }
  });
});
