// (Found by an independent review; this test failed before the fix.)
// a watcher that goes away while its feed waits for the stream to drain the
// INITIALIZED event (RawRegionFeed.start / RegionFeed.start: `await this.send(...)`) is closed
// (service.ts finish -> feed.close(): done, stop() clears a timer not set yet); start() then goes
// on and sets its leader-check / resolved-ts interval anyway. That interval is never cleared: one
// timer (and the feed it holds) leaks per such watcher, for the life of the process.
import { afterEach, expect, it } from "vitest";
import { DEFAULT_FEED_OPTIONS } from "../../src/kv/watch/feed.js";
import { Engine } from "../../src/kv/engine/index.js";
import { applyStateKey, NO_OBSERVER, regionStateKey } from "../../src/kv/raftstore/index.js";
import { writeRawChangesSince } from "../../src/kv/raftstore/raw-changes.js";
import type { FeedSink } from "../../src/kv/watch/index.js";
import { ChangeHub } from "../../src/kv/watch/index.js";
import { RawRegionFeed } from "../../src/kv/watch/raw-feed.js";
import { FeedMemoryQuota } from "../../src/kv/watch/quota.js";
import { ChangeDataRequest, ChangeDataRequest_KvAPI } from "../../src/proto/cdcpb.js";
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

it("a raw feed closed while it waits to send INITIALIZED leaves no interval running", async () => {
  const engine = (kv = await Engine.open(dir.path));
  const wb = engine
    .newBatch()
    .putMeta(regionStateKey(1n), Buffer.from(RegionLocalState.encode({ state: PeerState.Normal, region }).finish()))
    .putMeta(
      applyStateKey(1n),
      Buffer.from(RaftApplyState.encode({ appliedIndex: 10n, truncatedState: { index: 5n, term: 5n } }).finish()),
    );
  writeRawChangesSince(wb, 1n, 5n);
  await wb.write(true);
  const hub = new ChangeHub(silentLogger);
  hub.attach({ regionOf: () => region });
  hub.observer(NO_OBSERVER);
  const store = leaderStore(engine);
  const live = new Set<object>();
  const runtime: Runtime = {
    ...realRuntime,
    setInterval: () => {
      const h = {};
      live.add(h);
      return h;
    },
    clearInterval: (h) => {
      if (h) live.delete(h);
    },
  };
  let drained: (() => void) | undefined;
  const sink: FeedSink = {
    write: () => false, // the stream's buffer is full: wait for drain
    drain: () => new Promise<void>((resolve) => (drained = resolve)),
    end: () => undefined,
  };
  const req = ChangeDataRequest.fromPartial({
    regionId: 1n,
    regionEpoch: region.regionEpoch,
    kvApi: ChangeDataRequest_KvAPI.RawKV,
    fromIndex: 0n,
  });
  const quota = new FeedMemoryQuota(1 << 20);
  const feed = new RawRegionFeed(
    req,
    { store, hub, runtime, log: silentLogger, options: DEFAULT_FEED_OPTIONS, quota },
    sink,
  );
  const started = feed.start();
  for (let i = 0; i < 100 && !drained; i++) await new Promise((r) => setTimeout(r, 10));
  expect(drained, "the feed waits for the stream to drain INITIALIZED").toBeDefined();
  // The watcher goes away: the service closes the feed, and the call's 'close' ends the drain wait.
  feed.close();
  drained!();
  await started;
  expect(feed.closed).toBe(true);
  expect(live.size, "intervals still running after the feed closed").toBe(0);
});
