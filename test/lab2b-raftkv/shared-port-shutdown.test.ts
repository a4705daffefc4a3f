/**
 * The shared port (raft over TCP + gRPC, listenTinyKv with a raftSink) stops as a port bound by
 * grpc-js's bindAsync does: tryShutdown and forceShutdown close it at once, so a store stopping
 * takes no new connections and a store restarted in the same process can listen on it again.
 */
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RaftMessage, SnapshotChunk } from "../../src/proto/raft_serverpb.js";
import { StandaloneStorage } from "../../src/kv/storage/index.js";
import { createTinyKvService, listenTinyKv, RawHandlers, TxnHandlers } from "../../src/kv/server/index.js";
import type { RaftMessageSink } from "../../src/kv/transport/index.js";
import { RAFT_TCP_MAGIC } from "../../src/kv/transport/tcp-frames.js";
import { silentLogger } from "../../src/util/logger.js";
import { tempDir } from "../harness/wait.js";

class Sink implements RaftMessageSink {
  onRaftMessage(_msg: RaftMessage): void {}
  async onSnapshot(_chunks: AsyncIterable<SnapshotChunk>): Promise<void> {}
}

/** "connected" or the connect error's code, within 3 s. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const timer = setTimeout(() => {
      socket.destroy();
      resolve("no answer in 3 s");
    }, 3000);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code ?? err.message);
    });
  });
}

describe("the shared port stops with the gRPC server", () => {
  let dir: ReturnType<typeof tempDir>;
  let storage: StandaloneStorage;
  const cleanups: Array<() => Promise<void>> = [];

  async function listen(addr = "127.0.0.1:0") {
    const svc = createTinyKvService({
      raw: new RawHandlers(storage),
      txn: new TxnHandlers(storage),
      raft: new Sink(),
      log: silentLogger,
    });
    const listening = await listenTinyKv(svc, addr, { raftSink: new Sink() });
    cleanups.push(async () => {
      listening.server.forceShutdown();
      await listening.closePort();
    });
    return listening;
  }

  beforeAll(async () => {
    dir = tempDir();
    storage = new StandaloneStorage(dir.path);
    await storage.start();
  });
  afterAll(async () => {
    await Promise.all(cleanups.map((c) => c()));
    await storage.stop();
    dir.cleanup();
  });

  it("forceShutdown closes the port and its raft connections; the port can be listened on again", async () => {
    const first = await listen();
    const raft = net.connect(first.port, "127.0.0.1");
    raft.on("error", () => undefined);
    raft.resume(); // the store answers the magic: read it, or 'close' waits for someone to
    const raftClosed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 3000);
      raft.once("close", () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    raft.write(RAFT_TCP_MAGIC);
    await new Promise((r) => setTimeout(r, 50));

    first.server.forceShutdown();
    expect(await tryConnect(first.port)).toBe("ECONNREFUSED");
    expect(await raftClosed, "the raft connection closed").toBe(true);
    const again = await listen(`127.0.0.1:${first.port}`);
    expect(again.port).toBe(first.port);
    expect(await tryConnect(again.port)).toBe("connected");
  });

  it("tryShutdown stops taking connections at once, as bindAsync's listener does", async () => {
    const store = await listen();
    const shutDown = new Promise<void>((resolve) => store.server.tryShutdown(() => resolve()));
    expect(await tryConnect(store.port)).toBe("ECONNREFUSED");
    await shutDown;
  });
});
