/**
 * Everything from the network is untrusted. Malformed raft envelopes and corrupt or truncated
 * snapshot streams are dropped at the door: the store keeps serving, no peer is created from
 * them, and no unverified snapshot file stays on disk.
 */
import { readdirSync } from "node:fs";
import { crc32 } from "node:zlib";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Message } from "../../src/raft/index.js";
import { MessageType } from "../../src/raft/index.js";
import type { RaftMessage, SnapshotChunk } from "../../src/proto/raft_serverpb.js";
import { RaftSnapshotData } from "../../src/proto/raft_serverpb.js";
import { TestCluster } from "../harness/cluster.js";

function raftMsg(over: Partial<Message>): Message {
  return {
    msgType: MessageType.MsgHeartbeat,
    to: 1n,
    from: 2n,
    term: 1n,
    logTerm: 0n,
    index: 0n,
    entries: [],
    commit: 0n,
    snapshot: undefined,
    reject: false,
    rejectHint: 0n,
    context: Buffer.alloc(0),
    ...over,
  } as Message;
}

function envelope(over: Partial<RaftMessage>): RaftMessage {
  return {
    regionId: 77n,
    fromPeer: { id: 2n, storeId: 2n },
    toPeer: { id: 1n, storeId: 1n },
    message: raftMsg({}),
    regionEpoch: { confVer: 1n, version: 1n },
    isTombstone: false,
    startKey: Buffer.alloc(0),
    endKey: Buffer.alloc(0),
    ...over,
  };
}

function snapshotHead(data: Buffer, index = 50n): RaftMessage {
  return envelope({
    regionId: 1n,
    message: raftMsg({
      msgType: MessageType.MsgSnapshot,
      snapshot: { data, metadata: { index, term: 9n, confState: { nodes: [1n, 2n, 3n] } } },
    }),
  });
}

async function* chunks(head: RaftMessage, ...data: Buffer[]): AsyncGenerator<SnapshotChunk> {
  yield { message: head, data: Buffer.alloc(0) };
  for (const d of data) yield { message: undefined, data: d };
}

describe("hostile raft input", () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    // Store 4 holds no region, so a message it accepted could create a peer there.
    cluster = new TestCluster({ stores: 4, regionStores: 3 });
    await cluster.start();
    await cluster.put("before", "1");
  });
  afterAll(() => cluster.shutdown());

  const malformed: Array<[string, RaftMessage]> = [
    [
      "to_peer id 0",
      envelope({ toPeer: { id: 0n, storeId: 4n }, message: raftMsg({ to: 0n, msgType: MessageType.MsgRequestVote }) }),
    ],
    ["no to_peer", envelope({ toPeer: undefined })],
    [
      "no from_peer",
      envelope({
        regionId: 1n,
        fromPeer: undefined,
        regionEpoch: { confVer: 0n, version: 0n },
        message: raftMsg({ msgType: MessageType.MsgRequestVote }),
      }),
    ],
    [
      "no from_peer for a new region",
      envelope({
        toPeer: { id: 1n, storeId: 4n },
        fromPeer: undefined,
        message: raftMsg({ msgType: MessageType.MsgRequestVote }),
      }),
    ],
    ["no region epoch", envelope({ regionEpoch: undefined })],
    ["no raft message", envelope({ message: undefined })],
    ["region 0", envelope({ regionId: 0n })],
    ["unknown message type", envelope({ message: raftMsg({ msgType: 99 as MessageType }) })],
    [
      "from/to not matching the envelope",
      envelope({ message: raftMsg({ from: 5n, msgType: MessageType.MsgRequestVote }) }),
    ],
    ["garbage snapshot data", snapshotHead(Buffer.from([0xff, 0xff, 0xff, 0x0f, 0x01]))],
    [
      "snapshot of another region",
      snapshotHead(
        Buffer.from(
          RaftSnapshotData.encode({
            region: {
              id: 5n,
              startKey: Buffer.alloc(0),
              endKey: Buffer.alloc(0),
              regionEpoch: { confVer: 1n, version: 1n },
              peers: [{ id: 1n, storeId: 1n }],
            },
            fileSize: 0n,
            data: [],
          }).finish(),
        ),
      ),
    ],
    ["snapshot on region 1 as a stale sender", snapshotHead(Buffer.alloc(0))],
  ];

  it.each(malformed)("drops a message with %s and keeps serving", async (_what, msg) => {
    const target = msg.toPeer?.storeId === 4n ? 4n : 1n;
    const store = cluster.store(target)!;
    const before = store.peers.size;
    expect(() => store.onRaftMessage(msg)).not.toThrow();
    await cluster.put("after", "2");
    expect((await cluster.get("after"))?.toString()).toBe("2");
    expect(store.peers.size, "no peer was created from a malformed message").toBe(before);
    expect(store.stopped).toBe(false);
  });

  function validSnapshotData(size: number, checksum: number): Buffer {
    return Buffer.from(
      RaftSnapshotData.encode({
        region: {
          id: 1n,
          startKey: Buffer.alloc(0),
          endKey: Buffer.alloc(0),
          regionEpoch: { confVer: 1n, version: 1n },
          peers: [
            { id: 1n, storeId: 1n },
            { id: 2n, storeId: 2n },
            { id: 3n, storeId: 3n },
          ],
        },
        fileSize: BigInt(size),
        data: [],
        meta: { cfFiles: [{ cf: "all", size: BigInt(size), checksum }] },
      }).finish(),
    );
  }

  it.each([
    ["a checksum mismatch", 16, Buffer.alloc(16, 7)],
    ["a truncated file", 64, Buffer.alloc(16, 7)],
    ["more data than declared", 8, Buffer.alloc(16, 7)],
  ] as Array<[string, number, Buffer]>)(
    "refuses a snapshot stream with %s, deletes it, and keeps serving",
    async (_what, declared, body) => {
      const store = cluster.store(1n)!;
      const head = snapshotHead(validSnapshotData(declared, 12345), 60n);
      await expect(store.onSnapshot(chunks(head, body))).rejects.toThrow(/snapshot/);
      const snapDir = join(cluster.slots.get(1n)!.dir, "snap");
      expect(
        readdirSync(snapDir).filter((f) => f.startsWith("rev_")),
        "no received file is kept",
      ).toEqual([]);
      await cluster.put("after-snap", "3");
      expect((await cluster.get("after-snap"))?.toString()).toBe("3");
      expect(store.stopped).toBe(false);
    },
  );

  function record(cfIndex: number, key: string, value: string): Buffer {
    const header = Buffer.alloc(9);
    header[0] = cfIndex;
    header.writeUInt32BE(key.length, 1);
    header.writeUInt32BE(value.length, 5);
    return Buffer.concat([header, Buffer.from(key), Buffer.from(value)]);
  }

  function snapshotOf(body: Buffer, checksum: number | undefined, range: [string, string]): RaftMessage {
    const data = RaftSnapshotData.encode({
      region: {
        id: 1n,
        startKey: Buffer.from(range[0]),
        endKey: Buffer.from(range[1]),
        regionEpoch: { confVer: 1n, version: 1n },
        peers: [
          { id: 1n, storeId: 1n },
          { id: 2n, storeId: 2n },
          { id: 3n, storeId: 3n },
        ],
      },
      fileSize: BigInt(body.length),
      data: [],
      meta: { cfFiles: checksum === undefined ? [] : [{ cf: "all", size: BigInt(body.length), checksum }] },
    }).finish();
    return snapshotHead(Buffer.from(data), 70n);
  }

  it.each([
    ["no checksum declared", record(0, "a1", "v"), false, ["a", "b"]],
    ["a key outside the snapshot's region", record(0, "zzz", "v"), true, ["a", "b"]],
    ["an unknown CF byte", record(42, "a1", "v"), true, ["a", "b"]],
  ] as Array<[string, Buffer, boolean, [string, string]]>)(
    "refuses a well-framed snapshot with %s before it can reach an install",
    async (_what, body, withChecksum, range) => {
      const store = cluster.store(1n)!;
      await expect(
        store.onSnapshot(chunks(snapshotOf(body, withChecksum ? crc32(body) : undefined, range), body)),
      ).rejects.toThrow(/snapshot/);
      const snapDir = join(cluster.slots.get(1n)!.dir, "snap");
      expect(
        readdirSync(snapDir).filter((f) => f.startsWith("rev_")),
        "no received file is kept",
      ).toEqual([]);
      await cluster.put("after-framed", "4");
      expect(store.stopped).toBe(false);
    },
  );
});
