import type * as grpc from "@grpc/grpc-js";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MessageType } from "../../src/proto/eraftpb.js";
import type { SnapshotChunk } from "../../src/proto/raft_serverpb.js";
import { RaftMessage } from "../../src/proto/raft_serverpb.js";
import { StandaloneStorage } from "../../src/kv/storage/index.js";
import { createTinyKvService, listenTinyKv, RawHandlers, TxnHandlers } from "../../src/kv/server/index.js";
import type { GrpcTransportOptions, RaftMessageSink, TransportEvents } from "../../src/kv/transport/index.js";
import { GrpcTransport, StaticResolver } from "../../src/kv/transport/index.js";
import { silentLogger } from "../../src/util/logger.js";
import { tempDir, waitFor } from "../harness/wait.js";

const MiB = 1024 * 1024;

function append(regionId: bigint, index: number, entries: Array<{ index: number; data: Buffer }> = []): RaftMessage {
  return RaftMessage.fromPartial({
    regionId,
    fromPeer: { id: 10n, storeId: 1n },
    toPeer: { id: 20n, storeId: 2n },
    message: {
      msgType: MessageType.MsgAppend,
      from: 10n,
      to: 20n,
      term: 3n,
      index: BigInt(index),
      logTerm: 3n,
      commit: 5n,
      entries: entries.map((e) => ({ entryType: 0, term: 3n, index: BigInt(e.index), data: e.data })),
    },
    regionEpoch: { confVer: 1n, version: 1n },
  });
}

class Recorder implements RaftMessageSink, TransportEvents {
  msgs: RaftMessage[] = [];
  unreachable: RaftMessage[] = [];
  onRaftMessage(msg: RaftMessage): void {
    this.msgs.push(msg);
  }
  async onSnapshot(_chunks: AsyncIterable<SnapshotChunk>): Promise<void> {
    throw new Error("no snapshot expected");
  }
  onUnreachable(msg: RaftMessage): void {
    this.unreachable.push(msg);
  }
}

/**
 * Byte bounds of the gRPC raft transport: one stream per store pair carries every region's
 * traffic, so a message gRPC would refuse must never reach it, and queues are bounded in bytes.
 */
describe("lab2b transport bounds over gRPC", () => {
  let dir: ReturnType<typeof tempDir>;
  let storage: StandaloneStorage;
  const servers: grpc.Server[] = [];
  const transports: GrpcTransport[] = [];

  async function pair(more: Partial<GrpcTransportOptions> = {}) {
    const receiver = new Recorder();
    const svc = createTinyKvService({
      raw: new RawHandlers(storage),
      txn: new TxnHandlers(storage),
      raft: receiver,
      log: silentLogger,
    });
    const { server, port } = await listenTinyKv(svc, "127.0.0.1:0");
    servers.push(server);
    const sender = new Recorder();
    const t = new GrpcTransport({
      storeId: 1n,
      resolver: new StaticResolver([[2n, `127.0.0.1:${port}`]]),
      snapshotSource: () => {
        throw new Error("no snapshots");
      },
      events: sender,
      reconnectBackoffMs: 50,
      maxReconnectBackoffMs: 400,
      ...more,
    });
    transports.push(t);
    return { t, receiver, sender };
  }

  beforeAll(async () => {
    dir = tempDir();
    storage = new StandaloneStorage(dir.path);
    await storage.start();
  });
  afterAll(async () => {
    await Promise.all(transports.map((t) => t.close()));
    for (const s of servers) s.forceShutdown();
    await storage.stop();
    dir.cleanup();
  });

  it("a message over gRPC's 16 MiB limit is dropped and reported; the stream keeps carrying the other regions", async () => {
    const { t, receiver, sender } = await pair();
    for (let i = 0; i < 5; i++) t.send(append(1n, i));
    const huge = append(2n, 40, [{ index: 41, data: Buffer.alloc(17 * MiB, 1) }]);
    t.send(huge);
    for (let i = 5; i < 10; i++) t.send(append(1n, i));
    t.flush();
    await waitFor(() => receiver.msgs.length === 10, {
      timeoutMs: 10_000,
      message: `10 region-1 messages delivered (got ${receiver.msgs.length})`,
    });
    expect(receiver.msgs.map((m) => [m.regionId, Number(m.message!.index)])).toEqual(
      [...Array(10).keys()].map((i) => [1n, i]),
    );
    await waitFor(() => sender.unreachable.length === 1, {
      timeoutMs: 2000,
      message: "the oversized message reported unreachable",
    });
    expect(sender.unreachable[0]!.regionId).toBe(2n);
    expect(t.stats.streamFailures).toBe(0);
    expect(t.stats.streamsOpened).toBe(1);
    // Still the same healthy stream afterwards.
    t.send(append(1n, 10));
    t.flush();
    await waitFor(() => receiver.msgs.length === 11, {
      timeoutMs: 5000,
      message: "a later message on the same stream",
    });
    expect(t.stats.streamsOpened).toBe(1);
  });

  it("an append of 3 × 7 MiB entries is split into consecutive appends that arrive whole and in order", async () => {
    const { t, receiver, sender } = await pair();
    const datas = [0, 1, 2].map(() => randomBytes(7 * MiB));
    t.send(
      append(
        1n,
        10,
        datas.map((data, i) => ({ index: 11 + i, data })),
      ),
    );
    t.flush();
    await waitFor(() => receiver.msgs.flatMap((m) => m.message!.entries).length === 3, {
      timeoutMs: 15_000,
      message: "all three entries delivered",
    });
    expect(receiver.msgs.length).toBeGreaterThan(1);
    let prev = 10n;
    for (const m of receiver.msgs) {
      expect(m.message!.msgType).toBe(MessageType.MsgAppend);
      expect(m.message!.index).toBe(prev); // each part continues right after the previous one
      expect(m.message!.logTerm).toBe(3n);
      expect(m.message!.commit).toBe(5n);
      prev = m.message!.entries[m.message!.entries.length - 1]!.index;
    }
    const got = receiver.msgs.flatMap((m) => m.message!.entries);
    expect(got.map((e) => e.index)).toEqual([11n, 12n, 13n]);
    for (const [i, e] of got.entries()) expect(Buffer.from(e.data).equals(datas[i]!)).toBe(true);
    expect(sender.unreachable).toHaveLength(0);
    expect(t.stats.streamFailures).toBe(0);
  });

  it("the per-store queue is bounded in bytes: the oldest messages are dropped and reported", async () => {
    const { t, receiver, sender } = await pair({ maxQueuedBytes: 10 * (64 * 1024 + 1024) });
    const payload = Buffer.alloc(64 * 1024, 3);
    for (let i = 0; i < 100; i++) t.send(append(1n, i, [{ index: i + 1, data: payload }]));
    t.flush();
    await waitFor(() => sender.unreachable.length + receiver.msgs.length === 100, {
      timeoutMs: 5000,
      message: "every message delivered or reported",
    });
    expect(receiver.msgs.length).toBeLessThanOrEqual(10);
    expect(receiver.msgs.map((m) => Number(m.message!.index))).toEqual(
      [...Array(receiver.msgs.length).keys()].map((i) => 100 - receiver.msgs.length + i),
    );
  });

  it("bytes in flight per store are bounded: writes wait for gRPC, and everything still arrives in order", async () => {
    const { t, receiver, sender } = await pair({ maxInFlightBytes: 256 * 1024 });
    const payload = Buffer.alloc(100 * 1024, 4);
    for (let i = 0; i < 60; i++) t.send(append(1n, i, [{ index: i + 1, data: payload }]));
    t.flush();
    await waitFor(() => receiver.msgs.length === 60, { timeoutMs: 10_000, message: "60 messages delivered" });
    expect(receiver.msgs.map((m) => Number(m.message!.index))).toEqual([...Array(60).keys()]);
    expect(t.stats.backpressureWaits).toBeGreaterThan(0);
    expect(sender.unreachable).toHaveLength(0);
  });

  it("under backpressure a stream holds at most one 'drain' listener (no listener-leak warning)", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => {
      if (w.name === "MaxListenersExceededWarning") warnings.push(w);
    };
    process.on("warning", onWarning);
    try {
      const { t, receiver, sender } = await pair();
      const payload = Buffer.alloc(8 * 1024, 5);
      for (let i = 0; i < 3000; i++) t.send(append(1n, i, [{ index: i + 1, data: payload }]));
      t.flush();
      await waitFor(() => receiver.msgs.length === 3000, {
        timeoutMs: 20_000,
        message: `3000 messages delivered (got ${receiver.msgs.length})`,
      });
      expect(t.stats.backpressureWaits).toBeGreaterThan(0);
      expect(sender.unreachable).toHaveLength(0);
      // The warning is emitted on the next tick after the 11th listener; give it one.
      await new Promise((r) => setImmediate(r));
      expect(warnings.map((w) => w.message)).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  });
});
