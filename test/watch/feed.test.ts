// RegionFeed against a real engine and a fake store, with the hub's turns driven by hand: the
// orderings a cluster test only meets by chance.
import { afterEach, expect, it } from "vitest";
import { Engine } from "../../src/kv/engine/index.js";
import { applyStateKey, NO_OBSERVER, regionStateKey } from "../../src/kv/raftstore/index.js";
import type { FeedSink, FeedStore } from "../../src/kv/watch/index.js";
import { ChangeHub, RegionFeed } from "../../src/kv/watch/index.js";
import { DEFAULT_FEED_OPTIONS } from "../../src/kv/watch/feed.js";
import type { ChangeDataEvent } from "../../src/proto/cdcpb.js";
import { ChangeDataRequest } from "../../src/proto/cdcpb.js";
import type { Region } from "../../src/proto/metapb.js";
import { PeerState, RaftApplyState, RegionLocalState } from "../../src/proto/raft_serverpb.js";
import { EntryType } from "../../src/raft/eraftpb.js";
import { silentLogger } from "../../src/util/logger.js";
import { realRuntime } from "../../src/util/runtime.js";
import { tempDir, waitFor } from "../harness/wait.js";

const dir = tempDir("tinykv-feed-");
let kv: Engine | undefined;
afterEach(async () => {
  await kv?.close();
  kv = undefined;
  dir.cleanup();
});

const peer = { id: 1n, storeId: 1n };
const region: Region = {
  id: 1n,
  startKey: Buffer.alloc(0),
  endKey: Buffer.alloc(0),
  regionEpoch: { confVer: 1n, version: 1n },
  peers: [peer],
};

async function writeApplied(engine: Engine, appliedIndex: bigint): Promise<void> {
  await engine
    .newBatch()
    .putMeta(regionStateKey(1n), Buffer.from(RegionLocalState.encode({ state: PeerState.Normal, region }).finish()))
    .putMeta(applyStateKey(1n), Buffer.from(RaftApplyState.encode({ appliedIndex }).finish()))
    .write(true);
}

it("an entry that arrives while the feed reads its initial state still lets the resolved ts through", async () => {
  const engine = (kv = await Engine.open(dir.path));
  await writeApplied(engine, 10n);
  const hub = new ChangeHub(silentLogger);
  hub.attach({ regionOf: () => region });
  const observer = hub.observer(NO_OBSERVER);
  const store: FeedStore = {
    kv: engine,
    entryData: async () => undefined,
    replica: () => ({ region, isLeader: true, self: peer, leader: peer }),
    read: async () => ({ region, snapshot: engine.snapshot() }),
  };
  const events: ChangeDataEvent["events"] = [];
  const sink: FeedSink = { write: (ev) => events.push(...ev.events) > 0, drain: async () => {}, end: () => {} };
  const feed = new RegionFeed(
    ChangeDataRequest.fromPartial({ regionId: 1n, regionEpoch: region.regionEpoch, checkpointTs: 5n }),
    {
      store,
      hub,
      tso: async () => 100n,
      runtime: realRuntime,
      log: silentLogger,
      options: { ...DEFAULT_FEED_OPTIONS, resolvedTsIntervalMs: 10, maxPendingBytes: 1 << 20, scanPageRows: 16 },
    },
    sink,
  );
  const started = feed.start(); // subscribed and its snapshot taken (at applied index 10)
  // Entry 11 applies and its batch is written before the feed has read that snapshot's state.
  const turn = observer.turn();
  observer.applied!(1n, 1n, 1n, { entryType: EntryType.EntryNormal, term: 6n, index: 11n, data: Buffer.alloc(0) });
  turn.applied(1);
  await writeApplied(engine, 11n);
  await started;
  try {
    await waitFor(() => events.some((e) => e.resolvedTs === 100n), {
      timeoutMs: 3000,
      message: "no resolved ts: the feed lost track of entry 11",
    });
  } finally {
    feed.close();
  }
  expect(events.filter((e) => e.error)).toEqual([]);
});
