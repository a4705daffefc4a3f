import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MessageType } from "../../src/proto/eraftpb.js";
import type { SnapshotChunk } from "../../src/proto/raft_serverpb.js";
import { RaftMessage } from "../../src/proto/raft_serverpb.js";
import { StandaloneStorage } from "../../src/kv/storage/index.js";
import { createTinyKvService, listenTinyKv, RawHandlers, TxnHandlers } from "../../src/kv/server/index.js";
import type {
  GrpcTransportOptions,
  RaftMessageSink,
  RaftTransport,
  SnapshotSource,
  TransportEvents,
} from "../../src/kv/transport/index.js";
import {
  delay,
  dropRate,
  dropWhere,
  duplicate,
  GrpcTransport,
  isolate,
  MemoryNetwork,
  partition,
  reorder,
  StaticResolver,
} from "../../src/kv/transport/index.js";
import { silentLogger } from "../../src/util/logger.js";
import { realRuntime } from "../../src/util/runtime.js";
import { freePort } from "../harness/ports.js";
import { tempDir, waitFor } from "../harness/wait.js";

function raftMsg(from: bigint, to: bigint, index: number, msgType = MessageType.MsgAppend, regionId = 1n): RaftMessage {
  return RaftMessage.fromPartial({
    regionId,
    fromPeer: { id: from * 10n, storeId: from },
    toPeer: { id: to * 10n, storeId: to },
    message: { msgType, from: from * 10n, to: to * 10n, term: 1n, index: BigInt(index) },
    regionEpoch: { confVer: 1n, version: 1n },
  });
}

const indexes = (msgs: RaftMessage[]) => msgs.map((m) => Number(m.message?.index ?? -1));

class RecordingSink implements RaftMessageSink {
  msgs: RaftMessage[] = [];
  snapshots: Array<{ message: RaftMessage; data: Buffer; chunkSizes: number[] }> = [];

  onRaftMessage(msg: RaftMessage): void {
    this.msgs.push(msg);
  }

  async onSnapshot(chunks: AsyncIterable<SnapshotChunk>): Promise<void> {
    let message: RaftMessage | undefined;
    const parts: Buffer[] = [];
    for await (const c of chunks) {
      if (!message) {
        if (!c.message) throw new Error("first snapshot chunk carries no message");
        message = c.message;
        continue;
      }
      if (c.data.length === 0) throw new Error("empty snapshot data chunk");
      parts.push(Buffer.from(c.data));
    }
    if (!message) throw new Error("empty snapshot stream");
    this.snapshots.push({ message, data: Buffer.concat(parts), chunkSizes: parts.map((p) => p.length) });
  }
}

class RecordingEvents implements TransportEvents {
  unreachable: RaftMessage[] = [];
  snapshotStatus: Array<{ msg: RaftMessage; ok: boolean }> = [];
  onUnreachable(msg: RaftMessage): void {
    this.unreachable.push(msg);
  }
  onSnapshotStatus(msg: RaftMessage, ok: boolean): void {
    this.snapshotStatus.push({ msg, ok });
  }
}

/** A snapshot source yielding `data` in `piece`-byte buffers. */
function bufferSource(data: Buffer, piece: number): SnapshotSource {
  return async function* () {
    for (let off = 0; off < data.length; off += piece) yield data.subarray(off, off + piece);
  };
}

const noSnapshots: SnapshotSource = () => {
  throw new Error("no snapshot expected");
};

function sendAll(t: RaftTransport, from: bigint, to: bigint, n: number, startIndex = 0): void {
  for (let i = 0; i < n; i++) t.send(raftMsg(from, to, startIndex + i));
  t.flush();
}

describe("lab2b transport: in-memory network", () => {
  let net: MemoryNetwork;
  afterEach(() => net.close());

  function threeStores(seed = 7) {
    net = new MemoryNetwork({ seed, snapshotChunkBytes: 256 * 1024 });
    const sinks = [new RecordingSink(), new RecordingSink(), new RecordingSink()];
    const events = [new RecordingEvents(), new RecordingEvents(), new RecordingEvents()];
    for (const [i, s] of sinks.entries()) net.register(BigInt(i + 1), s);
    const ts = events.map((e, i) => net.transport(BigInt(i + 1), noSnapshots, e));
    return { sinks, events, ts };
  }

  it("delivers asynchronously and in order", async () => {
    const { sinks, ts } = threeStores();
    sendAll(ts[0]!, 1n, 2n, 200);
    expect(sinks[1]!.msgs).toHaveLength(0); // never synchronously inside flush
    await waitFor(() => sinks[1]!.msgs.length === 200, { timeoutMs: 2000, message: "200 messages from store 1 to 2" });
    expect(indexes(sinks[1]!.msgs)).toEqual([...Array(200).keys()]);
    expect(sinks[1]!.msgs[0]!.fromPeer?.storeId).toBe(1n);
  });

  it("sends without flush go out on the next immediate", async () => {
    const { sinks, ts } = threeStores();
    ts[0]!.send(raftMsg(1n, 3n, 1));
    await waitFor(() => sinks[2]!.msgs.length === 1, { timeoutMs: 1000, message: "an unflushed message delivered" });
  });

  it("partition drops across sides and reports unreachable; clearFilters heals", async () => {
    const { sinks, events, ts } = threeStores();
    net.addFilter(partition([1n], [2n, 3n]));
    sendAll(ts[0]!, 1n, 2n, 5);
    sendAll(ts[1]!, 2n, 3n, 5);
    sendAll(ts[2]!, 3n, 1n, 5);
    await waitFor(() => sinks[2]!.msgs.length === 5, { timeoutMs: 1000, message: "2→3 inside one side delivered" });
    await waitFor(() => events[0]!.unreachable.length === 5 && events[2]!.unreachable.length === 5, {
      timeoutMs: 1000,
      message: "cross-partition sends reported unreachable",
    });
    expect(sinks[0]!.msgs).toHaveLength(0);
    expect(sinks[1]!.msgs).toHaveLength(0);
    net.clearFilters();
    sendAll(ts[0]!, 1n, 2n, 1);
    await waitFor(() => sinks[1]!.msgs.length === 1, { timeoutMs: 1000, message: "1→2 after clearFilters" });
  });

  it("isolate cuts one store off both ways; removing that filter restores it", async () => {
    const { sinks, events, ts } = threeStores();
    const remove = net.addFilter(isolate(2n));
    sendAll(ts[0]!, 1n, 2n, 3);
    sendAll(ts[1]!, 2n, 3n, 3);
    sendAll(ts[0]!, 1n, 3n, 3);
    await waitFor(() => sinks[2]!.msgs.length === 3, { timeoutMs: 1000, message: "1→3 unaffected" });
    await waitFor(() => events[0]!.unreachable.length === 3 && events[1]!.unreachable.length === 3, {
      timeoutMs: 1000,
      message: "sends to/from the isolated store reported unreachable",
    });
    remove();
    sendAll(ts[1]!, 2n, 3n, 1);
    await waitFor(() => sinks[2]!.msgs.length === 4, { timeoutMs: 1000, message: "2→3 after un-isolating" });
  });

  it("dropRate(0.1) drops about 10% with a fixed seed, and the same seed replays the same drops", async () => {
    const run = async () => {
      const { sinks, events, ts } = threeStores(12345);
      net.addFilter(dropRate(0.1));
      sendAll(ts[0]!, 1n, 2n, 5000);
      await waitFor(() => sinks[1]!.msgs.length + events[0]!.unreachable.length === 5000, {
        timeoutMs: 5000,
        message: `every message delivered or reported (${net})`,
      });
      net.close();
      return indexes(sinks[1]!.msgs);
    };
    const first = await run();
    expect(first.length / 5000).toBeGreaterThan(0.87);
    expect(first.length / 5000).toBeLessThan(0.93);
    expect(await run()).toEqual(first);
  });

  it("duplicate(0.5) delivers about 1.5 copies per message", async () => {
    const { sinks, ts } = threeStores(99);
    net.addFilter(duplicate(0.5));
    sendAll(ts[0]!, 1n, 2n, 2000);
    await waitFor(() => sinks[1]!.msgs.length === 2000 + net.stats.duplicated, {
      timeoutMs: 3000,
      message: "all copies delivered",
    });
    expect(net.stats.duplicated).toBeGreaterThan(900);
    expect(net.stats.duplicated).toBeLessThan(1100);
    // Copies are distinct objects (decoded from the wire form), equal in content.
    const ones = sinks[1]!.msgs.filter((m) => m.message?.index === 0n);
    if (ones.length === 2) expect(ones[0]).not.toBe(ones[1]);
  });

  it("delay keeps per-link order; reorder lets messages overtake", async () => {
    const { sinks, ts } = threeStores(3);
    const removeDelay = net.addFilter(delay(1, 15));
    sendAll(ts[0]!, 1n, 2n, 100);
    await waitFor(() => sinks[1]!.msgs.length === 100, { timeoutMs: 2000, message: "delayed messages delivered" });
    expect(indexes(sinks[1]!.msgs)).toEqual([...Array(100).keys()]);
    removeDelay();
    net.addFilter(reorder(20));
    sendAll(ts[0]!, 1n, 3n, 100);
    await waitFor(() => sinks[2]!.msgs.length === 100, { timeoutMs: 2000, message: "reordered messages delivered" });
    const got = indexes(sinks[2]!.msgs);
    expect(got).not.toEqual([...Array(100).keys()]);
    expect([...got].sort((a, b) => a - b)).toEqual([...Array(100).keys()]);
  });

  it("a stopped (unregistered) store: sends fail with onUnreachable; after re-register they arrive", async () => {
    const { events, ts } = threeStores();
    net.unregister(2n);
    expect(() => sendAll(ts[0]!, 1n, 2n, 4)).not.toThrow();
    await waitFor(() => events[0]!.unreachable.length === 4, { timeoutMs: 1000, message: "4 unreachable reports" });
    const restarted = new RecordingSink();
    net.register(2n, restarted);
    sendAll(ts[0]!, 1n, 2n, 1);
    await waitFor(() => restarted.msgs.length === 1, { timeoutMs: 1000, message: "delivery to the restarted store" });
  });

  it("streams a multi-chunk snapshot to onSnapshot and reports success; a filtered one reports failure", async () => {
    net = new MemoryNetwork({ seed: 1, snapshotChunkBytes: 256 * 1024 });
    const sink = new RecordingSink();
    const events = new RecordingEvents();
    const data = randomBytes(1024 * 1024 + 17);
    net.register(2n, sink);
    const t = net.transport(1n, bufferSource(data, 100_000), events);
    const snap = raftMsg(1n, 2n, 50, MessageType.MsgSnapshot);
    t.send(snap);
    t.flush();
    await waitFor(() => events.snapshotStatus.length === 1, { timeoutMs: 2000, message: "snapshot status reported" });
    expect(events.snapshotStatus[0]).toEqual({ msg: snap, ok: true });
    expect(sink.snapshots).toHaveLength(1);
    expect(sink.snapshots[0]!.message.message?.msgType).toBe(MessageType.MsgSnapshot);
    expect(sink.snapshots[0]!.chunkSizes).toEqual([262144, 262144, 262144, 262144, 17]);
    expect(sink.snapshots[0]!.data.equals(data)).toBe(true);

    net.addFilter(dropWhere((env) => env.isSnapshot));
    t.send(raftMsg(1n, 2n, 51, MessageType.MsgSnapshot));
    await waitFor(() => events.snapshotStatus.length === 2, { timeoutMs: 2000, message: "dropped snapshot reported" });
    expect(events.snapshotStatus[1]!.ok).toBe(false);
    expect(sink.snapshots).toHaveLength(1);
  });
});

describe.each([
  ["gRPC streams", false],
  ["TCP connections", true],
])("lab2b transport: raft between stores over %s", (_wire, raftOverTcp) => {
  let dir: ReturnType<typeof tempDir>;
  let storage: StandaloneStorage;
  const stops: Array<() => Promise<void>> = [];
  const transports: RaftTransport[] = [];

  async function startStore(addr = "127.0.0.1:0") {
    const sink = new RecordingSink();
    const svc = createTinyKvService({
      raw: new RawHandlers(storage),
      txn: new TxnHandlers(storage),
      raft: sink,
      log: silentLogger,
    });
    // The raft sink is the receiver of raft over TCP on the same port (the gRPC Raft rpc is always served).
    const { server, port, closePort } = await listenTinyKv(svc, addr, { raftSink: raftOverTcp ? sink : undefined });
    const stop = async () => {
      server.forceShutdown();
      await closePort();
    };
    stops.push(stop);
    return { sink, server, port, addr: `127.0.0.1:${port}`, stop };
  }

  function transport(
    storeId: bigint,
    resolver: StaticResolver,
    source: SnapshotSource = noSnapshots,
    more: Partial<GrpcTransportOptions> = {},
  ) {
    const events = new RecordingEvents();
    const t = new GrpcTransport({
      storeId,
      resolver,
      snapshotSource: source,
      events,
      reconnectBackoffMs: 50,
      maxReconnectBackoffMs: 400,
      raftOverTcp,
      ...more,
    });
    transports.push(t);
    return { t, events };
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

  it("1,000 messages arrive in order on one stream, both directions", async () => {
    const s1 = await startStore();
    const s2 = await startStore();
    const resolver = new StaticResolver([
      [1n, s1.addr],
      [2n, s2.addr],
    ]);
    const a = transport(1n, resolver);
    const b = transport(2n, resolver);
    for (let batch = 0; batch < 10; batch++) sendAll(a.t, 1n, 2n, 100, batch * 100);
    sendAll(b.t, 2n, 1n, 10);
    await waitFor(() => s2.sink.msgs.length === 1000, { timeoutMs: 5000, message: "1000 messages at store 2" });
    await waitFor(() => s1.sink.msgs.length === 10, { timeoutMs: 5000, message: "10 messages at store 1" });
    expect(indexes(s2.sink.msgs)).toEqual([...Array(1000).keys()]);
    expect(s2.sink.msgs[7]).toEqual(raftMsg(1n, 2n, 7));
    expect(a.events.unreachable).toHaveLength(0);
  });

  it("a ~3 MiB snapshot arrives in ≤ 1 MiB chunks, byte for byte, and reports success", async () => {
    const s2 = await startStore();
    const data = randomBytes(3 * 1024 * 1024 + 12345);
    const a = transport(1n, new StaticResolver([[2n, s2.addr]]), bufferSource(data, 64 * 1024));
    const snap = raftMsg(1n, 2n, 77, MessageType.MsgSnapshot, 5n);
    a.t.send(snap);
    a.t.send(raftMsg(1n, 2n, 78)); // raft traffic is not held up by the snapshot
    a.t.flush();
    await waitFor(() => a.events.snapshotStatus.length === 1, {
      timeoutMs: 10_000,
      message: "snapshot status reported",
    });
    expect(a.events.snapshotStatus[0]!.ok).toBe(true);
    const got = s2.sink.snapshots[0]!;
    expect(got.message.regionId).toBe(5n);
    expect(got.chunkSizes).toEqual([1 << 20, 1 << 20, 1 << 20, 12345]);
    expect(got.data.equals(data)).toBe(true);
    await waitFor(() => s2.sink.msgs.length === 1, { timeoutMs: 2000, message: "the append next to the snapshot" });
  });

  it("after the receiver restarts, the sender reports unreachable, backs off, reconnects, and later messages arrive", async () => {
    const first = await startStore();
    const resolver = new StaticResolver([[2n, first.addr]]);
    const a = transport(1n, resolver);
    sendAll(a.t, 1n, 2n, 10);
    await waitFor(() => first.sink.msgs.length === 10, { timeoutMs: 5000, message: "messages before the restart" });

    await first.stop();
    let i = 100;
    await waitFor(
      () => {
        sendAll(a.t, 1n, 2n, 1, i++);
        return a.events.unreachable.length > 0;
      },
      { timeoutMs: 5000, message: "onUnreachable after the receiver went away" },
    );

    const second = await startStore(first.addr);
    const restartedAt = i;
    await waitFor(
      () => {
        sendAll(a.t, 1n, 2n, 1, i++);
        return second.sink.msgs.length >= 3;
      },
      { timeoutMs: 8000, message: "messages reach the restarted receiver after reconnecting", intervalMs: 25 },
    );
    const got = indexes(second.sink.msgs);
    expect(got[0]).toBeGreaterThanOrEqual(restartedAt - 1);
    expect(got).toEqual([...got].sort((x, y) => x - y)); // still in order on the new stream
    expect(a.t.stats.streamFailures).toBeGreaterThanOrEqual(1);
    expect(a.t.stats.streamsOpened).toBeGreaterThanOrEqual(2);
  });

  it("sends to an unresolvable or dead store report onUnreachable and never throw; snapshots report failure", async () => {
    const deadPort = await freePort();
    const resolver = new StaticResolver([[7n, `127.0.0.1:${deadPort}`]]);
    // The transport's clock stands still, so its first backoff never ends: the sends below are
    // surely "during backoff" however slow this machine is (with a real clock a 25-50 ms wait
    // could pass before them, and 50 queued sends to one peer are reported once).
    const frozenAt = Date.now();
    const a = transport(1n, resolver, bufferSource(Buffer.alloc(10), 5), {
      runtime: { ...realRuntime, now: () => frozenAt },
    });
    expect(() => {
      sendAll(a.t, 1n, 9n, 3); // no address for store 9
      sendAll(a.t, 1n, 7n, 3); // nothing listens at store 7's address
    }).not.toThrow();
    await waitFor(
      () =>
        a.events.unreachable.some((m) => m.toPeer?.storeId === 9n) &&
        a.events.unreachable.some((m) => m.toPeer?.storeId === 7n),
      { timeoutMs: 5000, message: "unreachable reported for stores 9 and 7" },
    );
    // While backing off, sends are dropped at once (reported), not queued without bound.
    sendAll(a.t, 1n, 7n, 50);
    await waitFor(() => a.events.unreachable.filter((m) => m.toPeer?.storeId === 7n).length >= 4, {
      timeoutMs: 5000,
      message: "sends during backoff reported unreachable",
    });
    a.t.send(raftMsg(1n, 9n, 1, MessageType.MsgSnapshot));
    a.t.send(raftMsg(1n, 7n, 1, MessageType.MsgSnapshot));
    await waitFor(() => a.events.snapshotStatus.length === 2, {
      timeoutMs: 5000,
      message: "two snapshot failures reported",
    });
    expect(a.events.snapshotStatus.every((s) => !s.ok)).toBe(true);
  });

  it("under backpressure (3,000 × 8 KiB in one flush) the stream drains and everything arrives in order", async () => {
    const s2 = await startStore();
    const a = transport(1n, new StaticResolver([[2n, s2.addr]]));
    const payload = randomBytes(8 * 1024);
    for (let i = 0; i < 3000; i++) {
      const m = raftMsg(1n, 2n, i);
      m.message!.entries = [{ entryType: 0, term: 1n, index: BigInt(i), data: payload }];
      a.t.send(m);
    }
    a.t.flush();
    await waitFor(() => s2.sink.msgs.length === 3000, { timeoutMs: 10_000, message: "3000 large messages delivered" });
    expect(indexes(s2.sink.msgs)).toEqual([...Array(3000).keys()]);
    expect(s2.sink.msgs[2999]!.message!.entries[0]!.data.equals(payload)).toBe(true);
    expect(a.t.stats.backpressureWaits).toBeGreaterThan(0);
    expect(a.events.unreachable).toHaveLength(0);
  });

  it("the per-store queue is bounded: the oldest messages are dropped and reported", async () => {
    const s2 = await startStore();
    const a = transport(1n, new StaticResolver([[2n, s2.addr]]), noSnapshots, { maxQueuedMessages: 10 });
    sendAll(a.t, 1n, 2n, 100);
    await waitFor(() => s2.sink.msgs.length === 10, { timeoutMs: 5000, message: "the newest 10 messages delivered" });
    expect(indexes(s2.sink.msgs)).toEqual([...Array(10).keys()].map((i) => 90 + i));
    await waitFor(() => a.events.unreachable.length === 90, { timeoutMs: 1000, message: "90 drops reported" });
  });

  it("a failing snapshot source or a receiver that rejects the snapshot reports failure", async () => {
    const s2 = await startStore();
    s2.sink.onSnapshot = async () => {
      throw new Error("receiver refuses");
    };
    const failing: SnapshotSource = async function* () {
      yield Buffer.alloc(10);
      throw new Error("snapshot file vanished");
    };
    const a = transport(1n, new StaticResolver([[2n, s2.addr]]), failing);
    const b = transport(1n, new StaticResolver([[2n, s2.addr]]), bufferSource(Buffer.alloc(100), 10));
    a.t.send(raftMsg(1n, 2n, 1, MessageType.MsgSnapshot));
    b.t.send(raftMsg(1n, 2n, 1, MessageType.MsgSnapshot));
    await waitFor(() => a.events.snapshotStatus.length === 1 && b.events.snapshotStatus.length === 1, {
      timeoutMs: 5000,
      message: "both snapshot statuses reported",
    });
    expect(a.events.snapshotStatus[0]!.ok).toBe(false);
    expect(b.events.snapshotStatus[0]!.ok).toBe(false);
  });

  it("close() ends streams; later sends are ignored without throwing", async () => {
    const s2 = await startStore();
    const a = transport(1n, new StaticResolver([[2n, s2.addr]]));
    sendAll(a.t, 1n, 2n, 5);
    await waitFor(() => s2.sink.msgs.length === 5, { timeoutMs: 5000, message: "messages before close" });
    await a.t.close();
    expect(() => sendAll(a.t, 1n, 2n, 1)).not.toThrow();
    await new Promise((r) => setTimeout(r, 50));
    expect(s2.sink.msgs).toHaveLength(5);
    expect(a.events.unreachable).toHaveLength(0);
  });
});
