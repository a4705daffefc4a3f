/**
 * Raft over TCP against clients that do not play by the wire: the shared port must neither crash,
 * nor leak, nor stop serving gRPC (docs/DESIGN-NOTES.md, "Raft over TCP between stores").
 */
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MessageType } from "../../src/proto/eraftpb.js";
import { RaftMessage } from "../../src/proto/raft_serverpb.js";
import type { SnapshotChunk } from "../../src/proto/raft_serverpb.js";
import type { RawGetResponse } from "../../src/proto/kvrpcpb.js";
import { RawGetRequest } from "../../src/proto/kvrpcpb.js";
import { StandaloneStorage } from "../../src/kv/storage/index.js";
import type { ListenOptions } from "../../src/kv/server/server.js";
import { createTinyKvService, listenTinyKv, RawHandlers, TxnHandlers } from "../../src/kv/server/index.js";
import type { RaftMessageSink } from "../../src/kv/transport/index.js";
import { frameHeader, RAFT_TCP_MAGIC } from "../../src/kv/transport/tcp-frames.js";
import { silentLogger } from "../../src/util/logger.js";
import { call, tinyKvClient } from "../harness/grpc.js";
import { tempDir, waitFor } from "../harness/wait.js";

class Sink implements RaftMessageSink {
  msgs: RaftMessage[] = [];
  onRaftMessage(msg: RaftMessage): void {
    this.msgs.push(msg);
  }
  async onSnapshot(_chunks: AsyncIterable<SnapshotChunk>): Promise<void> {}
}

function frame(index: number): Buffer {
  const body = RaftMessage.encode(
    RaftMessage.fromPartial({
      regionId: 1n,
      fromPeer: { id: 10n, storeId: 1n },
      toPeer: { id: 20n, storeId: 2n },
      message: { msgType: MessageType.MsgHeartbeat, from: 10n, to: 20n, term: 1n, index: BigInt(index) },
      regionEpoch: { confVer: 1n, version: 1n },
    }),
  ).finish();
  return Buffer.concat([frameHeader(body.length), body]);
}

/** A client connection; `closed` settles when the server (or anyone) closes it. */
async function open(port: number): Promise<{ socket: net.Socket; received: () => number; closed: Promise<void> }> {
  const socket = net.connect(port, "127.0.0.1");
  let received = 0;
  socket.on("data", (d) => (received += d.length));
  socket.on("error", () => undefined);
  const closed = new Promise<void>((r) => socket.once("close", () => r()));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return { socket, received: () => received, closed };
}

/** Resolves true if `p` settles within `ms`. */
function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void p.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe("raft over TCP: hostile clients on the shared port", () => {
  let dir: ReturnType<typeof tempDir>;
  let storage: StandaloneStorage;
  const stops: Array<() => Promise<void>> = [];
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);

  async function startStore(more: Partial<ListenOptions> = {}) {
    const sink = new Sink();
    const svc = createTinyKvService({
      raw: new RawHandlers(storage),
      txn: new TxnHandlers(storage),
      raft: sink,
      log: silentLogger,
    });
    const listening = await listenTinyKv(svc, "127.0.0.1:0", { raftSink: sink, ...more });
    stops.push(async () => {
      listening.server.forceShutdown();
      await listening.closePort();
    });
    return { sink, ...listening };
  }

  async function grpcStillServes(port: number): Promise<void> {
    const client = tinyKvClient(`127.0.0.1:${port}`);
    try {
      await call<RawGetRequest, RawGetResponse>(
        client,
        client.rawGet,
        RawGetRequest.fromPartial({ key: Buffer.from("k"), cf: "default" }),
      );
    } finally {
      client.close();
    }
  }

  beforeAll(async () => {
    process.on("uncaughtException", onUncaught);
    dir = tempDir();
    storage = new StandaloneStorage(dir.path);
    await storage.start();
  });
  afterAll(async () => {
    process.off("uncaughtException", onUncaught);
    await Promise.all(stops.map((stop) => stop()));
    await storage.stop();
    dir.cleanup();
  });

  it("a client that resets its connection before, inside or after the magic does not crash the store", async () => {
    const store = await startStore();
    const http2Start = Buffer.from("PRI * HTTP/2.0\r\n");
    for (const first of [Buffer.alloc(0), RAFT_TCP_MAGIC.subarray(0, 3), RAFT_TCP_MAGIC, http2Start]) {
      const c = await open(store.port);
      if (first.length > 0) c.socket.write(first);
      // Let the server read what was sent, then reset (RST): its next read fails with ECONNRESET.
      await new Promise((r) => setTimeout(r, 50));
      c.socket.resetAndDestroy();
      await c.closed;
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(uncaught.map((e) => String(e))).toEqual([]);
    await grpcStillServes(store.port);
  });
});
