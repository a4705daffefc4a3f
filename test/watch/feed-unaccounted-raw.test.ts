// The raw feed's side of feed-unaccounted-entries.test.ts: RawRegionFeed.onChanges
// counts an entry without a raw change record (a prewrite, a commit) at 96 bytes, or one whose
// record carries its own values at the record's size, while the queued AppliedChange keeps the
// entry's whole data. A watcher that does not read then holds 64 MiB for a feed capped at 4 MiB.
import { afterEach, expect, it } from "vitest";
import { CF_DEFAULT, Engine } from "../../src/kv/engine/index.js";
import { applyStateKey, NO_OBSERVER, regionStateKey } from "../../src/kv/raftstore/index.js";
import { encodeRawChangeRecord, writeRawChangesSince } from "../../src/kv/raftstore/raw-changes.js";
import type { FeedSink } from "../../src/kv/watch/index.js";
import { ChangeHub } from "../../src/kv/watch/index.js";
import { DEFAULT_FEED_OPTIONS } from "../../src/kv/watch/feed.js";
import { RawRegionFeed } from "../../src/kv/watch/raw-feed.js";
import { FeedMemoryQuota } from "../../src/kv/watch/quota.js";
import { ChangeDataRequest, ChangeDataRequest_KvAPI, Event_LogType } from "../../src/proto/cdcpb.js";
import { PeerState, RaftApplyState, RegionLocalState } from "../../src/proto/raft_serverpb.js";
import { EntryType } from "../../src/raft/eraftpb.js";
import { silentLogger } from "../../src/util/logger.js";
import { realRuntime } from "../../src/util/runtime.js";
import { tempDir } from "../harness/wait.js";
import { leaderStore, region } from "./one-region-fixture.js";

const dir = tempDir("tinykv-unaccounted-raw-");
let kv: Engine | undefined;
afterEach(async () => {
  await kv?.close();
  kv = undefined;
  dir.cleanup();
});

it("entries a raw feed queues count their data against a non-reading watcher's cap", async () => {
  const engine = (kv = await Engine.open(dir.path));
  const wb = engine
    .newBatch()
    .putMeta(regionStateKey(1n), Buffer.from(RegionLocalState.encode({ state: PeerState.Normal, region }).finish()))
    .putMeta(applyStateKey(1n), Buffer.from(RaftApplyState.encode({ appliedIndex: 10n }).finish()));
  writeRawChangesSince(wb, 1n, 5n);
  await wb.write(true);
  const hub = new ChangeHub(silentLogger);
  hub.attach({ regionOf: () => region });
  const observer = hub.observer(NO_OBSERVER);
  const store = leaderStore(engine);
  let initialized = false;
  const sink: FeedSink = {
    write: (ev) => {
      if (initialized) return false;
      if (ev.events.some((e) => e.entries?.entries.some((r) => r.type === Event_LogType.INITIALIZED)))
        initialized = true;
      return true;
    },
    drain: () => new Promise<void>(() => undefined), // the watcher never reads
    end: () => undefined,
  };
  const cap = 4 << 20;
  const feed = new RawRegionFeed(
    ChangeDataRequest.fromPartial({
      regionId: 1n,
      regionEpoch: region.regionEpoch,
      kvApi: ChangeDataRequest_KvAPI.RawKV,
    }),
    {
      store,
      hub,
      runtime: { ...realRuntime, setInterval: () => ({}), clearInterval: () => undefined },
      log: silentLogger,
      options: { ...DEFAULT_FEED_OPTIONS, maxPendingBytes: cap },
      quota: new FeedMemoryQuota(256 << 20),
    },
    sink,
  );
  await feed.start();
  expect(initialized).toBe(true);
  const apply = (index: bigint, data: Buffer, rawRecord: Buffer | undefined) => {
    const turn = observer.turn();
    observer.applied!(1n, 1n, 1n, { entryType: EntryType.EntryNormal, term: 6n, index, data }, rawRecord);
    turn.applied(1);
  };
  // A raw delete: its row is the event the stream cannot take, and the pump waits there.
  apply(
    11n,
    Buffer.alloc(0),
    encodeRawChangeRecord({ kind: "changes", changes: [{ op: "delete", cf: CF_DEFAULT, key: Buffer.from("r") }] }),
  );
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  // Then 64 entries of 1 MiB that changed no raw key (transactional writes in the same region).
  for (let i = 0; i < 64; i++) apply(12n + BigInt(i), Buffer.alloc(1 << 20, 0x61), undefined);
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  const queue = (feed as unknown as { queue: Array<{ change: { entryData: Buffer } }> }).queue;
  const held = queue.reduce((n, item) => n + item.change.entryData.length, 0);
  try {
    expect(
      feed.closed || held <= cap,
      `feed still running, holding ${Math.round(held / 2 ** 20)} MiB of entries, cap ${cap >> 20} MiB`,
    ).toBe(true);
  } finally {
    feed.close();
  }
});
