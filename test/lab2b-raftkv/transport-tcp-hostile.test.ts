/**
 * Raft over TCP against clients that do not play by the wire: the shared port must neither crash,
 * nor leak, nor stop serving gRPC (docs/DESIGN-NOTES.md, "Raft over TCP between stores").
 */
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { MessageType } from "../../src/proto/eraftpb.js";
import { RaftMessage } from "../../src/proto/raft_serverpb.js";
import type { SnapshotChunk } from "../../src/proto/raft_serverpb.js";
import type { RawGetResponse } from "../../src/proto/kvrpcpb.js";
import { RawGetRequest } from "../../src/proto/kvrpcpb.js";
import { StandaloneStorage } from "../../src/kv/storage/index.js";
import type { ListenOptions } from "../../src/kv/server/server.js";
import type { RaftMessageSink } from "../../src/kv/transport/index.js";
import { FrameDecoder, frameHeader, RAFT_TCP_MAGIC } from "../../src/kv/transport/tcp-frames.js";
import { call, tinyKvClient } from "../harness/grpc.js";
import { tempDir, waitFor } from "../harness/wait.js";
import { listenRaftPort } from "./raft-port.js";

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

describe("raft over TCP: reassembling frames", () => {
  it("frames of every size come out whole and in order however the bytes are cut", () => {
    const bodies = [0, 1, 3, 4, 5, 100, 70_000, 0, 200_000, 2].map((n, i) => Buffer.alloc(n, i + 1));
    const wire = Buffer.concat(bodies.flatMap((b) => [frameHeader(b.length), b]));
    for (const step of [1, 2, 3, 5, 4096, 65_537, wire.length]) {
      const got: Buffer[] = [];
      const decoder = new FrameDecoder((body) => got.push(Buffer.from(body)));
      for (let at = 0; at < wire.length; at += step) decoder.push(wire.subarray(at, at + step));
      expect(
        got.map((b) => b.length),
        `reads of ${step} bytes`,
      ).toEqual(bodies.map((b) => b.length));
      expect(got.every((b, i) => b.equals(bodies[i]!))).toBe(true);
      expect(decoder.bufferedBytes).toBe(0);
    }
  });

  it("a 16 MiB frame arriving in 64 KiB reads is reassembled in linear work, not a copy of all so far per read", () => {
    const size = 16 * 1024 * 1024 - 8;
    const wire = Buffer.concat([frameHeader(size), Buffer.alloc(size, 7)]);
    const reads: Buffer[] = [];
    for (let at = 0; at < wire.length; at += 64 * 1024) reads.push(wire.subarray(at, at + 64 * 1024));
    let bodies = 0;
    const decoder = new FrameDecoder((body) => {
      expect(body.length).toBe(size);
      expect(body[size - 1]).toBe(7);
      bodies++;
    });
    // Every byte the decoder allocates, whichever way it does: linear means a small multiple of the frame.
    let allocated = 0;
    let inside = false; // Buffer.concat allocates through Buffer.allocUnsafe: count it once
    const counted =
      <A extends unknown[]>(orig: (...args: A) => Buffer) =>
      (...args: A): Buffer => {
        if (inside) return orig(...args);
        inside = true;
        try {
          const out = orig(...args);
          allocated += out.length;
          return out;
        } finally {
          inside = false;
        }
      };
    const spies = (["concat", "alloc", "allocUnsafe", "allocUnsafeSlow"] as const).map((name) => {
      const orig = (Buffer[name] as (...args: unknown[]) => Buffer).bind(Buffer);
      return vi.spyOn(Buffer, name).mockImplementation(counted(orig) as never);
    });
    try {
      for (const read of reads) decoder.push(read);
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    expect(bodies).toBe(1);
    expect(allocated).toBeLessThanOrEqual(3 * wire.length);
  });
});

describe("raft over TCP: hostile clients on the shared port", () => {
  let dir: ReturnType<typeof tempDir>;
  let storage: StandaloneStorage;
  const stops: Array<() => Promise<void>> = [];
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);

  async function startStore(more: Partial<ListenOptions> = {}) {
    const sink = new Sink();
    const listening = await listenRaftPort(storage, sink, more);
    stops.push(listening.stop);
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

  it("a flood of pings gets at most one answer per read, not one queued byte per ping", async () => {
    const store = await startStore();
    const c = await open(store.port);
    try {
      const pings = 100_000;
      // A ping is 4 bytes and its answer 1: answered one by one, a client that does not read makes
      // the store queue one write per 4 bytes it sends (each ~100 bytes of memory), without end.
      c.socket.write(Buffer.concat([RAFT_TCP_MAGIC, Buffer.alloc(pings * 4), frame(1)]));
      await waitFor(() => store.sink.msgs.length === 1, { timeoutMs: 5000, message: "the frame after the pings" });
      await new Promise((r) => setTimeout(r, 100)); // answers still on their way
      expect(c.received()).toBeGreaterThan(0);
      expect(c.received()).toBeLessThanOrEqual(1000);
    } finally {
      c.socket.destroy();
    }
  });

  it("a raft connection that goes quiet after the magic or inside a frame is closed; one that pings is kept", async () => {
    const store = await startStore({ raftReceiver: { idleTimeoutMs: 200 } });
    const quiet = await open(store.port);
    quiet.socket.write(RAFT_TCP_MAGIC);
    const midFrame = await open(store.port);
    midFrame.socket.write(Buffer.concat([RAFT_TCP_MAGIC, frame(1).subarray(0, 6)]));
    const pinging = await open(store.port);
    pinging.socket.write(RAFT_TCP_MAGIC);
    const pinger = setInterval(() => pinging.socket.write(frameHeader(0)), 50);
    try {
      expect(await settlesWithin(quiet.closed, 3000), "the quiet connection closed").toBe(true);
      expect(await settlesWithin(midFrame.closed, 3000), "the stalled frame's connection closed").toBe(true);
      expect(await settlesWithin(pinging.closed, 200), "the pinging connection kept").toBe(false);
      pinging.socket.write(frame(2));
      await waitFor(() => store.sink.msgs.length === 1, { timeoutMs: 3000, message: "a frame on the kept connection" });
    } finally {
      clearInterval(pinger);
      for (const c of [quiet, midFrame, pinging]) c.socket.destroy();
    }
  });

  it("raft connections over the cap are closed; those under it and gRPC go on", async () => {
    const store = await startStore({ raftReceiver: { maxConnections: 2 } });
    const conns = [];
    for (let i = 0; i < 3; i++) {
      const c = await open(store.port);
      c.socket.write(RAFT_TCP_MAGIC);
      conns.push(c);
      await new Promise((r) => setTimeout(r, 50)); // accepted in this order
    }
    try {
      expect(await settlesWithin(conns[2]!.closed, 3000), "the third connection closed").toBe(true);
      for (const [i, c] of conns.slice(0, 2).entries()) c.socket.write(frame(i));
      await waitFor(() => store.sink.msgs.length === 2, { timeoutMs: 3000, message: "frames on the first two" });
      await grpcStillServes(store.port);
      // A closed one frees its place.
      conns[0]!.socket.destroy();
      await conns[0]!.closed;
      await new Promise((r) => setTimeout(r, 50));
      const again = await open(store.port);
      conns.push(again);
      again.socket.write(Buffer.concat([RAFT_TCP_MAGIC, frame(9)]));
      await waitFor(() => store.sink.msgs.length === 3, { timeoutMs: 3000, message: "a frame on a new connection" });
    } finally {
      for (const c of conns) c.socket.destroy();
    }
  });

  it("connections yet to send their first bytes are capped: one past the cap is closed at once; raft and gRPC still get in once they free", async () => {
    const store = await startStore({ raftReceiver: { maxUndecidedConnections: 3 } });
    const silent = [];
    for (let i = 0; i < 3; i++) silent.push(await open(store.port));
    await new Promise((r) => setTimeout(r, 50)); // all three accepted
    const over = await open(store.port);
    try {
      // Without the cap each silent connection is held for the 10 s first-bytes deadline.
      expect(await settlesWithin(over.closed, 2000), "the connection past the cap closed").toBe(true);
      expect(await settlesWithin(silent[0]!.closed, 100), "the ones under the cap kept").toBe(false);
      // One that decides (raft here) frees its place at once, as one that closes does.
      silent[0]!.socket.write(Buffer.concat([RAFT_TCP_MAGIC, frame(1)]));
      await waitFor(() => store.sink.msgs.length === 1, {
        timeoutMs: 3000,
        message: "a frame on a decided connection",
      });
      silent[1]!.socket.destroy();
      await silent[1]!.closed;
      await new Promise((r) => setTimeout(r, 50));
      await grpcStillServes(store.port);
    } finally {
      for (const c of [...silent, over]) c.socket.destroy();
    }
  });

  it("partial frames held over all raft connections are bounded: the connection going over is closed", async () => {
    const store = await startStore({ raftReceiver: { maxBufferedBytes: 1024 * 1024 } });
    const whole = Buffer.concat([frameHeader(700 * 1024), Buffer.alloc(700 * 1024)]);
    const first = await open(store.port);
    first.socket.write(Buffer.concat([RAFT_TCP_MAGIC, whole.subarray(0, 600 * 1024)]));
    await new Promise((r) => setTimeout(r, 100));
    const second = await open(store.port);
    second.socket.write(Buffer.concat([RAFT_TCP_MAGIC, whole.subarray(0, 600 * 1024)]));
    try {
      expect(await settlesWithin(second.closed, 3000), "the connection going over the bound closed").toBe(true);
      expect(await settlesWithin(first.closed, 100), "the one under it kept").toBe(false);
      first.socket.write(Buffer.concat([whole.subarray(600 * 1024), frame(1)]));
      // Its 700 KiB of zeros decode as an empty RaftMessage (the sink drops such): it was held, not refused.
      await waitFor(() => store.sink.msgs.length === 2, { timeoutMs: 3000, message: "the big frame and the next" });
      const again = await open(store.port);
      again.socket.write(Buffer.concat([RAFT_TCP_MAGIC, whole.subarray(0, 600 * 1024)]));
      expect(await settlesWithin(again.closed, 200), "the bytes of closed connections count no more").toBe(false);
      again.socket.destroy();
    } finally {
      first.socket.destroy();
      second.socket.destroy();
    }
  });
});
