// A transactional feed whose watcher does not read queues every applied entry of its
// region (RegionFeed.onChanges), but counts against its cap (maxPendingBytes) and the store's
// quota only the commit records an entry wrote. An entry that wrote none — a prewrite, a raw put,
// anything but a commit — counts 0 bytes while its queued AppliedChange holds the entry's whole
// data (entryData). Writers in the region then grow the feed's memory without bound and the feed
// never ends ServerIsBusy: 64 prewrites of 1 MiB values keep 64 MiB for a feed capped at 4 MiB.
// (The raw feed counts such entries 96 bytes each, while holding their data the same way.)
import { afterEach, expect, it } from "vitest";
import { CF_DEFAULT, Engine } from "../../src/kv/engine/index.js";
import { applyStateKey, NO_OBSERVER, regionStateKey } from "../../src/kv/raftstore/index.js";
import type { FeedSink } from "../../src/kv/watch/index.js";
import { ChangeHub, RegionFeed } from "../../src/kv/watch/index.js";
import { DEFAULT_FEED_OPTIONS } from "../../src/kv/watch/feed.js";
import { FeedMemoryQuota } from "../../src/kv/watch/quota.js";
import { ChangeDataRequest, Event_LogType } from "../../src/proto/cdcpb.js";
import { CmdType, RaftCmdRequest } from "../../src/proto/raft_cmdpb.js";
import { PeerState, RaftApplyState, RegionLocalState } from "../../src/proto/raft_serverpb.js";
import { EntryType } from "../../src/raft/eraftpb.js";
import { silentLogger } from "../../src/util/logger.js";
import { realRuntime } from "../../src/util/runtime.js";
import { tempDir } from "../harness/wait.js";
import { leaderStore, region } from "./one-region-fixture.js";

const dir = tempDir("tinykv-unaccounted-");
let kv: Engine | undefined;
afterEach(async () => {
  await kv?.close();
  kv = undefined;
  dir.cleanup();
});

it("entries without commit records count against a non-reading watcher's cap", async () => {
  const engine = (kv = await Engine.open(dir.path));
  await engine
    .newBatch()
    .putMeta(regionStateKey(1n), Buffer.from(RegionLocalState.encode({ state: PeerState.Normal, region }).finish()))
    .putMeta(applyStateKey(1n), Buffer.from(RaftApplyState.encode({ appliedIndex: 10n }).finish()))
    .write(true);
  const hub = new ChangeHub(silentLogger);
  hub.attach({ regionOf: () => region });
  const observer = hub.observer(NO_OBSERVER);
  const store = leaderStore(engine);
  let initialized = false;
  const errors: string[] = [];
  const sink: FeedSink = {
    write: (ev) => {
      for (const e of ev.events) if (e.error) errors.push(e.error.message);
      if (initialized) return false;
      if (ev.events.some((e) => e.entries?.entries.some((r) => r.type === Event_LogType.INITIALIZED)))
        initialized = true;
      return true;
    },
    drain: () => new Promise<void>(() => undefined), // the watcher never reads
    end: () => undefined,
  };
  const cap = 4 << 20;
  let tick: (() => void) | undefined;
  const feed = new RegionFeed(
    ChangeDataRequest.fromPartial({ regionId: 1n, regionEpoch: region.regionEpoch, checkpointTs: 5n }),
    {
      store,
      hub,
      tso: async () => 100n,
      runtime: {
        ...realRuntime,
        setInterval: (fn: () => void) => {
          tick = fn;
          return {};
        },
        clearInterval: () => undefined,
      },
      log: silentLogger,
      options: { ...DEFAULT_FEED_OPTIONS, maxPendingBytes: cap },
      quota: new FeedMemoryQuota(256 << 20),
    },
    sink,
  );
  await feed.start();
  expect(initialized).toBe(true);
  // A resolved ts round: its event is the one the stream cannot take, and the pump waits there.
  tick!();
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  // Then 64 prewrite-like entries (1 MiB values into CF default, no commit record).
  const value = Buffer.alloc(1 << 20, 0x61);
  for (let i = 0; i < 64; i++) {
    const cf = CF_DEFAULT;
    const data = Buffer.from(
      RaftCmdRequest.encode(
        RaftCmdRequest.fromPartial({
          header: { regionId: 1n, regionEpoch: region.regionEpoch },
          requests: [{ cmdType: CmdType.Put, put: { cf, key: Buffer.from(`k${i}`), value } }],
        }),
      ).finish(),
    );
    const turn = observer.turn();
    observer.applied!(1n, 1n, 1n, { entryType: EntryType.EntryNormal, term: 6n, index: 11n + BigInt(i), data });
    turn.applied(1);
  }
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  const queue = (feed as unknown as { queue: Array<{ change?: { entryData: Buffer } }> }).queue;
  const held = queue.reduce((n, item) => n + (item.change?.entryData.length ?? 0), 0);
  try {
    expect(
      feed.closed || held <= cap,
      `feed still running, holding ${Math.round(held / 2 ** 20)} MiB of entries, cap ${cap >> 20} MiB; errors ${errors}`,
    ).toBe(true);
  } finally {
    feed.close();
  }
});
