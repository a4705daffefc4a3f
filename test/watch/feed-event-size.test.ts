// A transactional feed packs up to scanPageRows (256) rows of its initial scan into
// one ChangeDataEvent, and every row of one applied entry into one event, whatever their values'
// size. Three committed values of 8 MiB (within the limits) in the watched range make one event
// of 24 MiB: over the 16 MiB gRPC ceiling, grpc-js fails the stream, and a watcher that resumes
// from its checkpoint meets the same page again: the watch can never get past it.
import { afterEach, expect, it } from "vitest";
import { CF_DEFAULT, CF_WRITE, Engine } from "../../src/kv/engine/index.js";
import { applyStateKey, NO_OBSERVER, regionStateKey } from "../../src/kv/raftstore/index.js";
import { MAX_GRPC_MESSAGE_BYTES, MAX_VALUE_BYTES } from "../../src/kv/server/limits.js";
import type { FeedSink } from "../../src/kv/watch/index.js";
import { ChangeHub, RegionFeed } from "../../src/kv/watch/index.js";
import { DEFAULT_FEED_OPTIONS } from "../../src/kv/watch/feed.js";
import { ChangeDataEvent, ChangeDataRequest, Event_LogType } from "../../src/proto/cdcpb.js";
import { CmdType, RaftCmdRequest } from "../../src/proto/raft_cmdpb.js";
import { PeerState, RaftApplyState, RegionLocalState } from "../../src/proto/raft_serverpb.js";
import { EntryType } from "../../src/raft/eraftpb.js";
import { encodeKey } from "../../src/txn/codec.js";
import { Write, WriteKind } from "../../src/txn/records.js";
import { silentLogger } from "../../src/util/logger.js";
import { realRuntime } from "../../src/util/runtime.js";
import { tempDir } from "../harness/wait.js";
import { leaderStore, region } from "./one-region-fixture.js";

const dir = tempDir("tinykv-event-size-");
let kv: Engine | undefined;
afterEach(async () => {
  await kv?.close();
  kv = undefined;
  dir.cleanup();
});

it("every event of an initial scan over big values fits one gRPC message", async () => {
  const engine = (kv = await Engine.open(dir.path));
  const wb = engine
    .newBatch()
    .putMeta(regionStateKey(1n), Buffer.from(RegionLocalState.encode({ state: PeerState.Normal, region }).finish()))
    .putMeta(applyStateKey(1n), Buffer.from(RaftApplyState.encode({ appliedIndex: 10n }).finish()));
  for (const i of [0, 1, 2]) {
    const key = Buffer.from(`big/${i}`);
    const startTs = 100n + BigInt(i) * 10n;
    wb.put(CF_DEFAULT, encodeKey(key, startTs), Buffer.alloc(MAX_VALUE_BYTES, 0x61 + i));
    wb.put(CF_WRITE, encodeKey(key, startTs + 1n), new Write(startTs, WriteKind.Put).toBytes());
  }
  await wb.write(true);
  const hub = new ChangeHub(silentLogger);
  hub.attach({ regionOf: () => region });
  const store = leaderStore(engine);
  const sizes: number[] = [];
  let rows = 0;
  let initialized = false;
  const sink: FeedSink = {
    write: (ev) => {
      sizes.push(ChangeDataEvent.encode(ev).finish().length);
      for (const e of ev.events)
        for (const r of e.entries?.entries ?? []) {
          if (r.type === Event_LogType.INITIALIZED) initialized = true;
          else rows++;
        }
      return true;
    },
    drain: async () => {},
    end: () => {},
  };
  const feed = new RegionFeed(
    ChangeDataRequest.fromPartial({ regionId: 1n, regionEpoch: region.regionEpoch, checkpointTs: 5n }),
    {
      store,
      hub,
      tso: async () => 1000n,
      runtime: { ...realRuntime, setInterval: () => ({}), clearInterval: () => undefined },
      log: silentLogger,
      options: DEFAULT_FEED_OPTIONS,
    },
    sink,
  );
  await feed.start();
  feed.close();
  expect(initialized).toBe(true);
  expect(rows).toBe(3);
  expect(Math.max(...sizes), `event sizes ${sizes}`).toBeLessThanOrEqual(MAX_GRPC_MESSAGE_BYTES);
});

it("every event of a live commit of big values fits one gRPC message", async () => {
  const engine = (kv = await Engine.open(dir.path));
  const wb = engine
    .newBatch()
    .putMeta(regionStateKey(1n), Buffer.from(RegionLocalState.encode({ state: PeerState.Normal, region }).finish()))
    .putMeta(applyStateKey(1n), Buffer.from(RaftApplyState.encode({ appliedIndex: 10n }).finish()));
  // Three prewritten values of 8 MiB (their locks do not matter here); the commit comes live.
  for (const i of [0, 1, 2])
    wb.put(CF_DEFAULT, encodeKey(Buffer.from(`big/${i}`), 100n), Buffer.alloc(MAX_VALUE_BYTES, 0x61 + i));
  await wb.write(true);
  const hub = new ChangeHub(silentLogger);
  hub.attach({ regionOf: () => region });
  const observer = hub.observer(NO_OBSERVER);
  const store = leaderStore(engine);
  const sizes: number[] = [];
  let rows = 0;
  const sink: FeedSink = {
    write: (ev) => {
      sizes.push(ChangeDataEvent.encode(ev).finish().length);
      for (const e of ev.events)
        for (const r of e.entries?.entries ?? []) if (r.type !== Event_LogType.INITIALIZED) rows++;
      return true;
    },
    drain: async () => {},
    end: () => {},
  };
  const feed = new RegionFeed(
    ChangeDataRequest.fromPartial({ regionId: 1n, regionEpoch: region.regionEpoch, checkpointTs: 5n }),
    {
      store,
      hub,
      tso: async () => 1000n,
      runtime: { ...realRuntime, setInterval: () => ({}), clearInterval: () => undefined },
      log: silentLogger,
      options: DEFAULT_FEED_OPTIONS,
    },
    sink,
  );
  await feed.start();
  const commit = Buffer.from(
    RaftCmdRequest.encode(
      RaftCmdRequest.fromPartial({
        header: { regionId: 1n, regionEpoch: region.regionEpoch },
        requests: [0, 1, 2].map((i) => ({
          cmdType: CmdType.Put,
          put: {
            cf: CF_WRITE,
            key: encodeKey(Buffer.from(`big/${i}`), 101n),
            value: new Write(100n, WriteKind.Put).toBytes(),
          },
        })),
      }),
    ).finish(),
  );
  const turn = observer.turn();
  observer.applied!(1n, 1n, 1n, { entryType: EntryType.EntryNormal, term: 6n, index: 11n, data: commit });
  turn.applied(1);
  for (let i = 0; i < 100 && rows < 3; i++) await new Promise((r) => setTimeout(r, 10));
  feed.close();
  expect(rows).toBe(3);
  expect(Math.max(...sizes), `event sizes ${sizes}`).toBeLessThanOrEqual(MAX_GRPC_MESSAGE_BYTES);
});
