// A transactional feed whose watcher stops reading: every resolved-ts round
// (RegionFeed.resolve, every resolvedTsIntervalMs) pushes one more { kind: "resolved" } item onto
// the feed's queue while the pump waits for the stream to drain. Those items carry no byte count,
// so neither the feed's cap nor the store's quota ever sees them: the queue grows by one item per
// round for as long as the watcher keeps the stream open without reading, and the feed never
// ends ServerIsBusy. Only the newest resolved ts is worth sending: one queued item is enough.
import { afterEach, expect, it } from "vitest";
import { Engine } from "../../src/kv/engine/index.js";
import { applyStateKey, regionStateKey } from "../../src/kv/raftstore/index.js";
import type { FeedSink } from "../../src/kv/watch/index.js";
import { ChangeHub, RegionFeed } from "../../src/kv/watch/index.js";
import { DEFAULT_FEED_OPTIONS } from "../../src/kv/watch/feed.js";
import { FeedMemoryQuota } from "../../src/kv/watch/quota.js";
import { ChangeDataRequest, Event_LogType } from "../../src/proto/cdcpb.js";
import { PeerState, RaftApplyState, RegionLocalState } from "../../src/proto/raft_serverpb.js";
import { silentLogger } from "../../src/util/logger.js";
import type { Runtime } from "../../src/util/runtime.js";
import { realRuntime } from "../../src/util/runtime.js";
import { tempDir } from "../harness/wait.js";
import { leaderStore, region } from "./one-region-fixture.js";

const dir = tempDir("tinykv-feed-");
let kv: Engine | undefined;
afterEach(async () => {
  await kv?.close();
  kv = undefined;
  dir.cleanup();
});

it("a watcher that never reads does not make its feed queue one resolved ts per round forever", async () => {
  const engine = (kv = await Engine.open(dir.path));
  await engine
    .newBatch()
    .putMeta(regionStateKey(1n), Buffer.from(RegionLocalState.encode({ state: PeerState.Normal, region }).finish()))
    .putMeta(applyStateKey(1n), Buffer.from(RaftApplyState.encode({ appliedIndex: 10n }).finish()))
    .write(true);
  const hub = new ChangeHub(silentLogger);
  hub.attach({ regionOf: () => region });
  const store = leaderStore(engine);
  let tick: (() => void) | undefined;
  const runtime: Runtime = {
    ...realRuntime,
    setInterval: (fn: () => void) => {
      tick = fn;
      return {};
    },
    clearInterval: () => undefined,
  };
  // The stream takes the initial events, then its buffer is full and the watcher never reads.
  let initialized = false;
  const sink: FeedSink = {
    write: (ev) => {
      if (initialized) return false;
      if (ev.events.some((e) => e.entries?.entries.some((r) => r.type === Event_LogType.INITIALIZED)))
        initialized = true;
      return true;
    },
    drain: () => new Promise<void>(() => undefined),
    end: () => undefined,
  };
  let ts = 100n;
  const quota = new FeedMemoryQuota(1 << 20);
  const feed = new RegionFeed(
    ChangeDataRequest.fromPartial({ regionId: 1n, regionEpoch: region.regionEpoch, checkpointTs: 5n }),
    {
      store,
      hub,
      tso: async () => ts++,
      runtime,
      log: silentLogger,
      options: { ...DEFAULT_FEED_OPTIONS, maxPendingBytes: 1 << 20 },
      quota,
    },
    sink,
  );
  await feed.start();
  expect(tick, "the resolved ts timer runs").toBeDefined();
  const queue = (feed as unknown as { queue: unknown[] }).queue;
  for (let round = 0; round < 500; round++) {
    tick!();
    for (let i = 0; i < 20 && (feed as unknown as { resolving: boolean }).resolving; i++)
      await new Promise((r) => setImmediate(r));
  }
  try {
    // 500 rounds = 100 s of a watcher not reading at the default 200 ms interval.
    expect(feed.closed || queue.length <= 2, `queue holds ${queue.length} items after 500 rounds`).toBe(true);
  } finally {
    feed.close();
  }
});
