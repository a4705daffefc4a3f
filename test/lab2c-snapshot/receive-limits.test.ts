/**
 * Any network client can open the `Snapshot` rpc. Before these limits a store took every stream
 * at once, wrote whatever size one declared, and waited forever on one that went silent, so a
 * client could fill its disk or memory. Now: at most `concurrentRecvSnapLimit` receives at once
 * (the next is refused at once, RESOURCE_EXHAUSTED), none declaring more than `snapRecvMaxBytes`
 * (refused before a byte is written, RESOURCE_EXHAUSTED), none silent for `snapRecvIdleMs`
 * (aborted, ABORTED, its partial file deleted), no record bigger than a raft entry (refused at
 * its header, ABORTED). Small limits here; the sender is a bare gRPC client of the store's
 * Snapshot rpc.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { resolveConfig } from "../../src/kv/raftstore/config.js";
import { createTinyKvService, listenTinyKv, RawHandlers, TxnHandlers } from "../../src/kv/server/index.js";
import { StandaloneStorage } from "../../src/kv/storage/index.js";
import { MessageType } from "../../src/proto/eraftpb.js";
import type { RaftMessage, SnapshotChunk } from "../../src/proto/raft_serverpb.js";
import { RaftSnapshotData } from "../../src/proto/raft_serverpb.js";
import { TinyKvClient } from "../../src/proto/tinykvpb.js";
import { silentLogger } from "../../src/util/logger.js";
import { TestCluster } from "../harness/cluster.js";
import { tempDir, waitFor } from "../harness/wait.js";

const LIMITS = { concurrentRecvSnapLimit: 2, snapRecvMaxBytes: 64 * 1024, snapRecvIdleMs: 300 };

let cluster: TestCluster;
let dir: ReturnType<typeof tempDir>;
let storage: StandaloneStorage;
let server: grpc.Server;
let client: TinyKvClient;

beforeAll(async () => {
  cluster = new TestCluster({ stores: 1, config: LIMITS });
  await cluster.start();
  dir = tempDir();
  storage = new StandaloneStorage(dir.path);
  await storage.start();
  const svc = createTinyKvService({
    raw: new RawHandlers(storage),
    txn: new TxnHandlers(storage),
    raft: cluster.store(1n)!,
    log: silentLogger,
  });
  const listening = await listenTinyKv(svc, "127.0.0.1:0");
  server = listening.server;
  client = new TinyKvClient(`127.0.0.1:${listening.port}`, grpc.credentials.createInsecure());
});
const calls: Array<grpc.ClientWritableStream<SnapshotChunk>> = [];
// What a test left open ends with it: the next one starts with no receive in progress.
afterEach(async () => {
  for (const c of calls.splice(0)) c.cancel();
  await waitFor(() => receiving() === 0, { timeoutMs: 5_000, message: "no snapshot being received after a test" });
});
afterAll(async () => {
  client.close();
  server.forceShutdown();
  await storage.stop();
  dir.cleanup();
  await cluster.shutdown();
});

/** One record of region 77's default CF whose value makes the record `bytes` long. */
function body(bytes: number): Buffer {
  const key = Buffer.from("k");
  const header = Buffer.alloc(9);
  header.writeUInt32BE(key.length, 1);
  header.writeUInt32BE(bytes - 9 - key.length, 5);
  return Buffer.concat([header, key, Buffer.alloc(bytes - 9 - key.length, 7)]);
}

let nextIndex = 100n;
/**
 * The head of a well-formed snapshot of region 77, which store 1 does not hold: received and
 * checked in full, then dropped at the door (so an accepted stream ends OK and leaves no file).
 */
function head(data: Buffer, declared = data.length): RaftMessage {
  const snapData = RaftSnapshotData.encode({
    region: {
      id: 77n,
      startKey: Buffer.alloc(0),
      endKey: Buffer.alloc(0),
      regionEpoch: { confVer: 1n, version: 1n },
      peers: [
        { id: 1n, storeId: 1n },
        { id: 2n, storeId: 2n },
      ],
    },
    fileSize: BigInt(declared),
    data: [],
    meta: { cfFiles: [{ cf: "all", size: BigInt(declared), checksum: crc32(data) }] },
  }).finish();
  return {
    regionId: 77n,
    fromPeer: { id: 2n, storeId: 2n },
    toPeer: { id: 1n, storeId: 1n },
    regionEpoch: { confVer: 1n, version: 1n },
    isTombstone: false,
    startKey: Buffer.alloc(0),
    endKey: Buffer.alloc(0),
    message: {
      msgType: MessageType.MsgSnapshot,
      to: 1n,
      from: 2n,
      term: 9n,
      logTerm: 0n,
      index: 0n,
      entries: [],
      commit: 0n,
      reject: false,
      rejectHint: 0n,
      context: Buffer.alloc(0),
      snapshot: {
        data: Buffer.from(snapData),
        metadata: { index: nextIndex++, term: 9n, confState: { nodes: [1n, 2n] } },
      },
    },
  };
}

/** A Snapshot call; `code` is set once the store answered (OK, or the refusal's status). */
function send(): { call: grpc.ClientWritableStream<SnapshotChunk>; code?: number; details?: string } {
  const s: { call: grpc.ClientWritableStream<SnapshotChunk>; code?: number; details?: string } = {
    call: client.snapshot((err) => {
      s.code = err ? err.code : grpc.status.OK;
      s.details = err?.details;
    }),
  };
  calls.push(s.call);
  return s;
}

const answered = (s: { code?: number }, what: string, timeoutMs = 2_000) =>
  waitFor(() => s.code !== undefined, { timeoutMs, message: what });

function receivedFiles(): string[] {
  return readdirSync(join(cluster.slots.get(1n)!.dir, "snap")).filter((f) => f.startsWith("rev_"));
}

const receiving = () => cluster.store(1n)!.snapshotCounts().receiving;

it("past concurrentRecvSnapLimit streams at once, the next is refused at once with RESOURCE_EXHAUSTED; a free slot takes one again", async () => {
  const data = body(4096);
  const open = [send(), send()];
  for (const s of open) {
    s.call.write({ message: head(data), data: Buffer.alloc(0) });
    s.call.write({ data: data.subarray(0, 1000) });
  }
  await waitFor(() => receiving() === 2, { timeoutMs: 2_000, message: "two streams being received" });

  const third = send();
  third.call.write({ message: head(data), data: Buffer.alloc(0) });
  await answered(third, "the third stream to be refused without waiting for the others");
  expect(third.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  expect(third.details).toMatch(/concurrentRecvSnapLimit/);

  // The first finishes: its slot takes a new stream, which is received whole.
  open[0]!.call.write({ data: data.subarray(1000) });
  open[0]!.call.end();
  await answered(open[0]!, "the first stream's answer");
  expect(open[0]!.code).toBe(grpc.status.OK);
  const fourth = send();
  fourth.call.write({ message: head(data), data: Buffer.alloc(0) });
  fourth.call.write({ data });
  fourth.call.end();
  await answered(fourth, "the fourth stream's answer");
  expect(fourth.code, fourth.details).toBe(grpc.status.OK);

  open[1]!.call.cancel();
  await waitFor(() => receiving() === 0, { timeoutMs: 2_000, message: "no stream being received" });
  expect(open[1]!.code).toBe(grpc.status.CANCELLED);
  expect(receivedFiles(), "no received file is kept").toEqual([]);
});

it("a stream declaring more than snapRecvMaxBytes is refused before its data; one at the limit is received", async () => {
  const over = send();
  // Only the head: the refusal must not wait for data.
  over.call.write({ message: head(body(1024), LIMITS.snapRecvMaxBytes + 1), data: Buffer.alloc(0) });
  await answered(over, "the oversized stream to be refused at its head");
  expect(over.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  expect(over.details).toMatch(/snapRecvMaxBytes/);
  expect(receivedFiles(), "nothing written").toEqual([]);

  const data = body(LIMITS.snapRecvMaxBytes);
  const atLimit = send();
  atLimit.call.write({ message: head(data), data: Buffer.alloc(0) });
  for (let off = 0; off < data.length; off += 16 * 1024)
    atLimit.call.write({ data: data.subarray(off, off + 16 * 1024) });
  atLimit.call.end();
  await answered(atLimit, "the stream at the limit to be received");
  expect(atLimit.code, atLimit.details).toBe(grpc.status.OK);
  expect(receivedFiles()).toEqual([]);
  // A configured limit must take a region's snapshot.
  expect(() => resolveConfig({ snapRecvMaxBytes: 64 * 1024 })).toThrow(/at least twice regionMaxSize/);
});

it("a record bigger than any raft entry is refused at its header, not held until the stream ends", async () => {
  const header = Buffer.alloc(9);
  header.writeUInt32BE(1, 1);
  header.writeUInt32BE(48 << 20, 5); // a 48 MiB value: no raft entry can have written it
  const huge = send();
  huge.call.write({ message: head(header, LIMITS.snapRecvMaxBytes), data: Buffer.alloc(0) });
  huge.call.write({ data: header });
  await answered(huge, "the stream to be refused at the record's header");
  expect(huge.code).toBe(grpc.status.ABORTED);
  expect(huge.details).toMatch(/corrupt record/);
  expect(receivedFiles()).toEqual([]);
});

it("a stream silent for snapRecvIdleMs is aborted and its partial file deleted; a slow one that keeps sending is not", async () => {
  const data = body(4096);
  const silent = send();
  silent.call.write({ message: head(data), data: Buffer.alloc(0) });
  silent.call.write({ data: data.subarray(0, 1000) });
  // The partial data is on disk while the sender is silent...
  await waitFor(() => receivedFiles().length === 1, { timeoutMs: 2_000, message: "the partial file on disk" });
  // ...until the idle timeout aborts the stream.
  await answered(silent, "the silent stream to be aborted", 3_000);
  expect(silent.code).toBe(grpc.status.ABORTED);
  expect(silent.details).toMatch(/no chunk for 300 ms/);
  expect(receivedFiles(), "the partial file is deleted").toEqual([]);
  expect(receiving()).toBe(0);

  // A chunk every 100 ms: longer than the idle timeout in all, never silent that long.
  const slow = send();
  slow.call.write({ message: head(data), data: Buffer.alloc(0) });
  for (let off = 0; off < data.length; off += 512) {
    await new Promise((r) => setTimeout(r, 100));
    slow.call.write({ data: data.subarray(off, off + 512) });
  }
  slow.call.end();
  await answered(slow, "the slow stream to be received");
  expect(slow.code, slow.details).toBe(grpc.status.OK);
  expect(receivedFiles()).toEqual([]);
});
