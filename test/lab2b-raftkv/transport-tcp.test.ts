import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MessageType } from "../../src/proto/eraftpb.js";
import { RaftMessage } from "../../src/proto/raft_serverpb.js";
import type { RawGetResponse } from "../../src/proto/kvrpcpb.js";
import { RawGetRequest, RawPutRequest } from "../../src/proto/kvrpcpb.js";
import type { SnapshotChunk } from "../../src/proto/raft_serverpb.js";
import { StandaloneStorage } from "../../src/kv/storage/index.js";
import type { RaftMessageSink, RaftTransport } from "../../src/kv/transport/index.js";
import { GrpcTransport, StaticResolver } from "../../src/kv/transport/index.js";
import { TCP_KEEPALIVE_MS, TCP_KEEPALIVE_TIMEOUT_MS } from "../../src/kv/transport/raft-link.js";
import { FIRST_BYTES_TIMEOUT_MS } from "../../src/kv/transport/tcp-receiver.js";
import { FrameDecoder, frameHeader, RAFT_TCP_MAGIC, RaftFrameError } from "../../src/kv/transport/tcp-frames.js";
import type { Runtime } from "../../src/util/runtime.js";
import { realRuntime } from "../../src/util/runtime.js";
import { call, tinyKvClient } from "../harness/grpc.js";
import { tempDir, waitFor } from "../harness/wait.js";
import { listenRaftPort } from "./raft-port.js";

function raftMsg(index: number): RaftMessage {
  return RaftMessage.fromPartial({
    regionId: 1n,
    fromPeer: { id: 10n, storeId: 1n },
    toPeer: { id: 20n, storeId: 2n },
    message: { msgType: MessageType.MsgAppend, from: 10n, to: 20n, term: 1n, index: BigInt(index) },
    regionEpoch: { confVer: 1n, version: 1n },
  });
}

class Sink implements RaftMessageSink {
  msgs: RaftMessage[] = [];
  onRaftMessage(msg: RaftMessage): void {
    this.msgs.push(msg);
  }
  async onSnapshot(_chunks: AsyncIterable<SnapshotChunk>): Promise<void> {}
}

/** The runtime with one kind of wait made short, so a test sees a deadline pass in well under a second. */
function shortened(longMs: number, shortMs: number): Runtime {
  return {
    ...realRuntime,
    setTimeout: (fn, ms) => realRuntime.setTimeout(fn, ms === longMs ? shortMs : ms),
  };
}

/** Raw bytes to a port; resolves with what came back once the server closed the connection. */
function rawExchange(port: number, bytes: Buffer, timeoutMs = 5000): Promise<{ closed: boolean; received: Buffer }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ closed: false, received: Buffer.concat(got) });
    }, timeoutMs);
    socket.on("data", (d) => got.push(d));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ closed: true, received: Buffer.concat(got) });
    });
    socket.write(bytes);
  });
}

describe("raft over TCP: the frames", () => {
  function frames(...bodies: Buffer[]): Buffer {
    return Buffer.concat(bodies.flatMap((b) => [frameHeader(b.length), b]));
  }

  it("a frame split over many chunks, or many frames in one chunk, come out whole and in order", () => {
    const got: string[] = [];
    const decoder = new FrameDecoder((body) => got.push(body.toString()));
    const wire = frames(Buffer.from("first"), Buffer.alloc(0), Buffer.from("x".repeat(1000)), Buffer.from("last"));
    for (let i = 0; i < wire.length; i += 3) decoder.push(wire.subarray(i, i + 3));
    decoder.push(frames(Buffer.from("a"), Buffer.from("b")));
    expect(got).toEqual(["first", "", "x".repeat(1000), "last", "a", "b"]);
  });

  it("a frame declaring more than the limit is refused before its bytes arrive", () => {
    const decoder = new FrameDecoder(() => undefined, 1024);
    expect(() => decoder.push(frameHeader(1025))).toThrow(RaftFrameError);
  });
});

describe("raft over TCP: one port with gRPC", () => {
  let dir: ReturnType<typeof tempDir>;
  let storage: StandaloneStorage;
  const stops: Array<() => Promise<void>> = [];
  const transports: RaftTransport[] = [];

  async function startStore(runtime: Runtime = realRuntime) {
    const sink = new Sink();
    const { port, stop } = await listenRaftPort(storage, sink, { runtime });
    stops.push(stop);
    return { sink, port };
  }

  function sender(addr: string, runtime: Runtime = realRuntime) {
    const unreachable: RaftMessage[] = [];
    const t = new GrpcTransport({
      storeId: 1n,
      resolver: new StaticResolver([[2n, addr]]),
      snapshotSource: () => {
        throw new Error("no snapshot expected");
      },
      events: { onUnreachable: (m) => unreachable.push(m) },
      raftOverTcp: true,
      runtime,
      reconnectBackoffMs: 50,
      maxReconnectBackoffMs: 200,
    });
    transports.push(t);
    return { t, unreachable };
  }

  function sendAll(t: RaftTransport, from: number, n: number): void {
    for (let i = 0; i < n; i++) t.send(raftMsg(from + i));
    t.flush();
  }

  beforeAll(async () => {
    dir = tempDir();
    storage = new StandaloneStorage(dir.path);
    await storage.start();
  });
  afterAll(async () => {
    await Promise.all(transports.map((t) => t.close()));
    await Promise.all(stops.map((stop) => stop()));
    await storage.stop();
    dir.cleanup();
  });

  it("raft messages arrive in order while the same port answers gRPC requests", async () => {
    const store = await startStore();
    const { t } = sender(`127.0.0.1:${store.port}`);
    const client = tinyKvClient(`127.0.0.1:${store.port}`);
    try {
      sendAll(t, 0, 500);
      await call(
        client,
        client.rawPut,
        RawPutRequest.fromPartial({ key: Buffer.from("k"), value: Buffer.from("v"), cf: "default" }),
      );
      sendAll(t, 500, 500);
      const got = await call<RawGetRequest, RawGetResponse>(
        client,
        client.rawGet,
        RawGetRequest.fromPartial({ key: Buffer.from("k"), cf: "default" }),
      );
      expect(Buffer.from(got.value).toString()).toBe("v");
      await waitFor(() => store.sink.msgs.length === 1000, { timeoutMs: 5000, message: "1,000 raft messages" });
      expect(store.sink.msgs.map((m) => Number(m.message!.index))).toEqual([...Array(1000).keys()]);
    } finally {
      client.close();
    }
  });

  it("a peer sending a frame over the limit or an undecodable message is disconnected; the store goes on", async () => {
    const store = await startStore();
    const huge = await rawExchange(store.port, Buffer.concat([RAFT_TCP_MAGIC, frameHeader(0xffffffff)]));
    expect(huge.closed).toBe(true);
    const junk = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]);
    const garbage = await rawExchange(store.port, Buffer.concat([RAFT_TCP_MAGIC, frameHeader(junk.length), junk]));
    expect(garbage.closed).toBe(true);
    expect(store.sink.msgs).toHaveLength(0);

    const { t } = sender(`127.0.0.1:${store.port}`);
    sendAll(t, 0, 3);
    await waitFor(() => store.sink.msgs.length === 3, { timeoutMs: 5000, message: "messages from a good peer" });
  });

  it("the magic is answered with the magic, then a keepalive ping with one byte", async () => {
    const store = await startStore();
    const socket = net.connect(store.port, "127.0.0.1");
    try {
      let got = Buffer.alloc(0);
      socket.on("data", (d: Buffer) => (got = Buffer.concat([got, d])));
      socket.write(Buffer.concat([RAFT_TCP_MAGIC, frameHeader(0)]));
      await waitFor(() => got.length >= RAFT_TCP_MAGIC.length + 1, {
        timeoutMs: 3000,
        message: "the magic and a ping's answer came back",
      });
      expect(got.subarray(0, RAFT_TCP_MAGIC.length).equals(RAFT_TCP_MAGIC)).toBe(true);
      expect(got.length).toBe(RAFT_TCP_MAGIC.length + 1);
    } finally {
      socket.destroy();
    }
  });

  it("a store that takes only gRPC (an older version) gets raft over gRPC; TCP is tried again once that breaks", async () => {
    const sink = new Sink();
    // No raftSink: gRPC's own listener, as a store before raft over TCP had.
    const old = await listenRaftPort(storage, sink, { raftSink: undefined });
    stops.push(old.stop);
    const { t, unreachable } = sender(`127.0.0.1:${old.port}`);
    await waitFor(
      () => {
        sendAll(t, sink.msgs.length + 100, 1);
        return sink.msgs.length >= 3;
      },
      { timeoutMs: 5000, message: "raft messages reach a gRPC-only store", intervalMs: 50 },
    );
    expect(unreachable.length).toBeGreaterThanOrEqual(1); // what the refused TCP connection carried
    expect((t as GrpcTransport).stats.streamsOpened).toBeGreaterThanOrEqual(2);
  });

  it("a connection that says nothing is closed after the first-bytes deadline", async () => {
    const store = await startStore(shortened(FIRST_BYTES_TIMEOUT_MS, 100));
    const silent = await rawExchange(store.port, Buffer.alloc(0), 3000);
    expect(silent.closed).toBe(true);
  });

  it("a destination that stops answering keepalives is reported unreachable and dialed again", async () => {
    // A port that takes connections and never answers: a hung or partitioned store.
    let accepted = 0;
    const mute = net.createServer((s) => {
      accepted++;
      s.on("error", () => undefined);
      s.resume();
    });
    await new Promise<void>((r) => mute.listen(0, "127.0.0.1", r));
    try {
      // Ten times faster than real time: the keepalive gives up after about 1 s.
      const start = Date.now();
      const fast: Runtime = {
        ...realRuntime,
        now: () => start + (Date.now() - start) * 10,
        setInterval: (fn, ms) => realRuntime.setInterval(fn, ms === TCP_KEEPALIVE_MS ? ms / 10 : ms),
      };
      const { t, unreachable } = sender(`127.0.0.1:${(mute.address() as net.AddressInfo).port}`, fast);
      sendAll(t, 0, 1);
      await waitFor(() => unreachable.length > 0, {
        timeoutMs: (TCP_KEEPALIVE_TIMEOUT_MS / 10) * 4,
        message: "the unanswered connection reported unreachable",
      });
      await waitFor(
        () => {
          sendAll(t, 1, 1);
          return accepted >= 2;
        },
        { timeoutMs: 5000, message: "a new connection after the backoff", intervalMs: 50 },
      );
    } finally {
      mute.close();
    }
  });
});
