// A transactional feed (RegionFeed) whose requested range lies outside its region
// (a watcher routed by a wrong view, or garbage): the feed clips the range to the region — an
// empty, inverted span — and then answers INITIALIZED and resolved ts forever, rows never. The
// watcher takes that as "nothing changed in my range up to this ts" while the keys live in
// another region: it misses every change there. The raw feed (RawRegionFeed) refuses such a range
// with EpochNotMatch so that the watcher looks its region up again; the transactional one must too.
import { afterEach, expect, it } from "vitest";
import { Engine } from "../../src/kv/engine/index.js";
import { applyStateKey, regionStateKey } from "../../src/kv/raftstore/index.js";
import type { FeedSink, FeedStore } from "../../src/kv/watch/index.js";
import { ChangeHub, RegionFeed } from "../../src/kv/watch/index.js";
import { DEFAULT_FEED_OPTIONS } from "../../src/kv/watch/feed.js";
import type { ChangeDataEvent } from "../../src/proto/cdcpb.js";
import { ChangeDataRequest } from "../../src/proto/cdcpb.js";
import type { Region } from "../../src/proto/metapb.js";
import { PeerState, RaftApplyState, RegionLocalState } from "../../src/proto/raft_serverpb.js";
import { silentLogger } from "../../src/util/logger.js";
import { realRuntime } from "../../src/util/runtime.js";
import { tempDir, waitFor } from "../harness/wait.js";

const dir = tempDir("tinykv-range-");
let kv: Engine | undefined;
afterEach(async () => {
  await kv?.close();
  kv = undefined;
  dir.cleanup();
});

const peer = { id: 1n, storeId: 1n };
// The region holds [a, m); the watcher asks for [x, z).
const region: Region = {
  id: 1n,
  startKey: Buffer.from("a"),
  endKey: Buffer.from("m"),
  regionEpoch: { confVer: 1n, version: 1n },
  peers: [peer],
};

it("a transactional feed for a range outside its region is refused, not served empty", async () => {
  const engine = (kv = await Engine.open(dir.path));
  await engine
    .newBatch()
    .putMeta(regionStateKey(1n), Buffer.from(RegionLocalState.encode({ state: PeerState.Normal, region }).finish()))
    .putMeta(applyStateKey(1n), Buffer.from(RaftApplyState.encode({ appliedIndex: 10n }).finish()))
    .write(true);
  const hub = new ChangeHub(silentLogger);
  hub.attach({ regionOf: () => region });
  const store: FeedStore = {
    kv: engine,
    entryData: async () => undefined,
    replica: () => ({ region, isLeader: true, self: peer, leader: peer }),
    read: async () => ({ region, snapshot: engine.snapshot() }),
  };
  const events: ChangeDataEvent["events"] = [];
  let ended = false;
  const sink: FeedSink = {
    write: (ev) => events.push(...ev.events) > 0,
    drain: async () => {},
    end: () => {
      ended = true;
    },
  };
  const feed = new RegionFeed(
    ChangeDataRequest.fromPartial({
      regionId: 1n,
      regionEpoch: region.regionEpoch,
      checkpointTs: 5n,
      startKey: Buffer.from("x"),
      endKey: Buffer.from("z"),
    }),
    {
      store,
      hub,
      tso: async () => 100n,
      runtime: realRuntime,
      log: silentLogger,
      options: { ...DEFAULT_FEED_OPTIONS, resolvedTsIntervalMs: 10 },
    },
    sink,
  );
  await feed.start();
  try {
    await waitFor(() => ended || events.some((e) => (e.resolvedTs ?? 0n) > 0n), {
      timeoutMs: 3000,
      message: "an answer",
    });
  } finally {
    feed.close();
  }
  const resolved = events.filter((e) => (e.resolvedTs ?? 0n) > 0n).map((e) => e.resolvedTs);
  expect(resolved, "resolved ts sent for a range this region does not hold").toEqual([]);
  expect(events.at(-1)?.error?.epochNotMatch).toBeDefined();
});
