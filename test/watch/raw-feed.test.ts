// RawRegionFeed against a real engine and a fake store, the hub's turns and the leader check
// driven by hand: a new leader behind the watcher, a lost leadership, a replayed split, a gap.
import { afterEach, expect, it } from "vitest";
import { DEFAULT_FEED_OPTIONS } from "../../src/kv/watch/feed.js";
import { Engine } from "../../src/kv/engine/index.js";
import { CF_DEFAULT, RAW_CF_DEFAULT } from "../../src/kv/engine/index.js";
import { applyStateKey, NO_OBSERVER, rawChangeKey, regionStateKey } from "../../src/kv/raftstore/index.js";
import type { RawChangeRecord } from "../../src/kv/raftstore/raw-changes.js";
import { encodeRawChangeRecord, writeRawChangesSince } from "../../src/kv/raftstore/raw-changes.js";
import type { FeedSink, FeedStore } from "../../src/kv/watch/index.js";
import { ChangeHub, invalidRequest } from "../../src/kv/watch/index.js";
import { RawRegionFeed } from "../../src/kv/watch/raw-feed.js";
import { FeedMemoryQuota } from "../../src/kv/watch/quota.js";
import type { ChangeDataEvent } from "../../src/proto/cdcpb.js";
import { ChangeDataRequest, ChangeDataRequest_KvAPI } from "../../src/proto/cdcpb.js";
import type { Region } from "../../src/proto/metapb.js";
import { CmdType, RaftCmdRequest } from "../../src/proto/raft_cmdpb.js";
import { PeerState, RaftApplyState, RegionLocalState } from "../../src/proto/raft_serverpb.js";
import { EntryType } from "../../src/raft/eraftpb.js";
import { silentLogger } from "../../src/util/logger.js";
import type { Runtime } from "../../src/util/runtime.js";
import { realRuntime } from "../../src/util/runtime.js";
import { tempDir, waitFor } from "../harness/wait.js";

const dir = tempDir("tinykv-rawfeed-");
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
const put = (key: string, value: string): RawChangeRecord => ({
  kind: "changes",
  changes: [{ op: "put", cf: CF_DEFAULT, key: Buffer.from(key), value: Buffer.from(value) }],
});

async function writeState(
  engine: Engine,
  appliedIndex: bigint,
  /** Records, or the bytes of one as stored. */
  records: Array<[bigint, RawChangeRecord | Buffer]> = [],
  /** null: none written (an older build applied everything). */
  since: bigint | null = 5n,
) {
  const wb = engine
    .newBatch()
    .putMeta(regionStateKey(1n), Buffer.from(RegionLocalState.encode({ state: PeerState.Normal, region }).finish()))
    .putMeta(
      applyStateKey(1n),
      Buffer.from(RaftApplyState.encode({ appliedIndex, truncatedState: { index: 5n, term: 5n } }).finish()),
    );
  for (const [i, r] of records) wb.putMeta(rawChangeKey(1n, i), Buffer.isBuffer(r) ? r : encodeRawChangeRecord(r));
  if (since !== null) writeRawChangesSince(wb, 1n, since);
  await wb.write(true);
}

/** A feed on a fake store whose leadership the test sets, with its leader check run by hand. */
async function setup(
  appliedIndex: bigint,
  fromIndex: bigint,
  records: Array<[bigint, RawChangeRecord | Buffer]> = [],
  since: bigint | null = 5n,
  /** The raft log's entries' data, by index (records that refer to their entry read it). */
  entries = new Map<bigint, Buffer>(),
  quota?: FeedMemoryQuota,
) {
  const engine = (kv = await Engine.open(dir.path));
  await writeState(engine, appliedIndex, records, since);
  const hub = new ChangeHub(silentLogger);
  hub.attach({ regionOf: () => region });
  const observer = hub.observer(NO_OBSERVER);
  const state = { leader: true };
  const store: FeedStore = {
    kv: engine,
    entryData: async (_regionId, index) => entries.get(index),
    replica: () => ({ region, isLeader: state.leader, self: peer, leader: state.leader ? peer : undefined }),
    read: async () => ({ region, snapshot: engine.snapshot() }),
  };
  let leaderCheck: (() => void) | undefined;
  const runtime: Runtime = {
    ...realRuntime,
    setInterval: (fn) => {
      leaderCheck = fn;
      return {};
    },
    clearInterval: () => undefined,
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
  const req = ChangeDataRequest.fromPartial({
    regionId: 1n,
    regionEpoch: region.regionEpoch,
    kvApi: ChangeDataRequest_KvAPI.RawKV,
    fromIndex,
  });
  const feed = new RawRegionFeed(
    req,
    { store, hub, runtime, log: silentLogger, options: DEFAULT_FEED_OPTIONS, quota },
    sink,
  );
  /** One turn applying `entries` (index, record or none), its batch written. */
  const apply = (entries: Array<[bigint, RawChangeRecord | undefined]>) => {
    const turn = observer.turn();
    for (const [index, r] of entries)
      observer.applied!(
        1n,
        1n,
        1n,
        { entryType: EntryType.EntryNormal, term: 6n, index, data: Buffer.alloc(0) },
        r && encodeRawChangeRecord(r),
      );
    turn.applied(entries.length);
  };
  const rows = () =>
    events.flatMap((e) => (e.entries?.entries ?? []).map((r) => [e.index, r.type, r.key.toString()] as const));
  return { feed, events, state, apply, rows, ended: () => ended, leaderCheck: () => leaderCheck?.() };
}

it("a new leader that has not applied all the watcher got: the live part starts after the watcher's index", async () => {
  const t = await setup(10n, 12n);
  await t.feed.start();
  // Entries 11 and 12 come after the snapshot here, but the watcher had them from the old leader.
  t.apply([
    [11n, put("a", "1")],
    [12n, put("b", "2")],
    [13n, put("c", "3")],
  ]);
  try {
    await waitFor(() => t.rows().some(([, , k]) => k === "c"), { timeoutMs: 3000, message: "entry 13 never sent" });
  } finally {
    t.feed.close();
  }
  expect(t.rows()).toEqual([
    [12n, 5, ""], // INITIALIZED at the watcher's index, not this replica's applied 10
    [13n, 2, "c"], // COMMIT
  ]);
});

it("a lost leadership ends the feed with NotLeader at the next leader check", async () => {
  const t = await setup(10n, 0n);
  await t.feed.start();
  t.leaderCheck();
  expect(t.events.filter((e) => e.error)).toEqual([]);
  t.state.leader = false;
  t.leaderCheck();
  expect(t.ended()).toBe(true);
  expect(t.events.at(-1)?.error?.notLeader?.regionId).toBe(1n);
});

it("a split among the stored records ends the replay there with EpochNotMatch, its index and its regions", async () => {
  const left = { ...region, endKey: Buffer.from("m"), regionEpoch: { confVer: 1n, version: 2n } };
  const right = { ...region, id: 9n, startKey: Buffer.from("m"), regionEpoch: { confVer: 1n, version: 2n } };
  const t = await setup(10n, 6n, [
    [7n, put("x", "before the split")],
    [8n, { kind: "split", regions: [left, right] }],
    [9n, put("a", "after, in the left region")],
  ]);
  await t.feed.start();
  expect(t.rows()).toEqual([[7n, 4, "x"]]); // COMMITTED
  const last = t.events.at(-1)!;
  expect(last.index).toBe(8n);
  expect(last.error?.epochNotMatch?.currentRegions.map((r) => r.id)).toEqual([1n, 9n]);
  expect(t.ended()).toBe(true);
});

it("a stored record whose values lie in its raft entry is replayed from the log, or compacted once the log dropped it", async () => {
  const command = (key: string, value: string) =>
    Buffer.from(
      RaftCmdRequest.encode(
        RaftCmdRequest.fromPartial({
          requests: [
            { cmdType: CmdType.Put, put: { cf: RAW_CF_DEFAULT, key: Buffer.from(key), value: Buffer.from(value) } },
          ],
        }),
      ).finish(),
    );
  const record = (key: string) =>
    encodeRawChangeRecord({
      kind: "changes",
      changes: [
        { op: "put", cf: CF_DEFAULT, key: Buffer.from(key), value: Buffer.alloc(0), inEntry: { request: 0, write: 0 } },
      ],
    });
  const stored: Array<[bigint, Buffer]> = [
    [7n, record("a")],
    [8n, record("b")],
  ];
  const log = new Map([
    [7n, command("a", "hello")],
    [8n, command("b", "world")],
  ]);
  const t = await setup(10n, 6n, stored, 5n, log);
  await t.feed.start();
  t.feed.close();
  const values = t.events.flatMap((e) => (e.entries?.entries ?? []).map((r) => `${r.key}=${r.value}`));
  expect(values).toEqual(["a=hello", "b=world", "="]); // and INITIALIZED

  // Entry 8 left the log (compacted after the kv snapshot was read): the position is, too.
  await kv?.close();
  log.delete(8n);
  const gone = await setup(10n, 6n, stored, 5n, log);
  await gone.feed.start();
  expect(gone.events.at(-1)?.error?.positionCompacted).toEqual({ regionId: 1n, fromIndex: 6n, oldestIndex: 8n });
  expect(gone.ended()).toBe(true);
});

it("the store's feeds share one memory quota: a feed that would pass it ends ServerIsBusy and gives its bytes back", async () => {
  // Before, each feed had only its own 8 MiB cap: a thousand watchers that stop reading could hold 8 GiB.
  const quota = new FeedMemoryQuota(2_000);
  expect(quota.take(1_500)).toBe(true); // what the store's other feeds hold
  const t = await setup(10n, 0n, [], 5n, new Map(), quota);
  await t.feed.start();
  t.apply([[11n, put("a", "x".repeat(100))]]);
  await waitFor(() => t.rows().some(([, , k]) => k === "a"), { timeoutMs: 3000, message: "entry 11 never sent" });
  expect(quota.usedBytes, "a sent change's bytes are given back").toBe(1_500);
  t.apply([[12n, put("b", "x".repeat(600))]]);
  await waitFor(() => t.ended(), { timeoutMs: 3000, message: "the feed went on past the store's quota" });
  const error = t.events.at(-1)?.error;
  expect(error?.serverIsBusy?.reason).toBe("change feed memory quota");
  expect(error?.message).toMatch(/hold 2000 bytes/);
  expect(quota.usedBytes, "the ended feed holds nothing").toBe(1_500);
});

it("an entry missing from the live sequence (a snapshot installed) ends the feed rather than skip it", async () => {
  const t = await setup(10n, 10n);
  await t.feed.start();
  t.apply([[12n, put("a", "1")]]);
  await waitFor(() => t.ended(), { timeoutMs: 3000, message: "the feed went on past a gap" });
  expect(t.events.at(-1)?.error?.message).toMatch(/skipped raft entries 11\.\.11/);
  expect(t.rows()).toEqual([[10n, 5, ""]]);
});

it("a request is refused before anything starts: an unknown kv_api, or from_index on a transactional feed", () => {
  const base = { regionId: 1n, regionEpoch: region.regionEpoch };
  expect(
    invalidRequest(ChangeDataRequest.fromPartial({ ...base, kvApi: ChangeDataRequest_KvAPI.RawKV })),
  ).toBeUndefined();
  expect(invalidRequest(ChangeDataRequest.fromPartial({ ...base, kvApi: 7 as ChangeDataRequest_KvAPI }))).toMatch(
    /kv_api 7 is not one of/,
  );
  expect(invalidRequest(ChangeDataRequest.fromPartial({ ...base, fromIndex: 9n }))).toMatch(
    /from_index is for kv_api = RawKV/,
  );
});

it("a position from before records began on this replica (an older build applied it) is compacted, not empty", async () => {
  for (const [since, oldest] of [
    [8n, 8n], // records since 8: entry 7 has none here
    [null, 10n], // none written yet: nothing before the applied index
  ] as const) {
    const t = await setup(10n, 6n, [], since);
    await t.feed.start();
    expect(t.events.at(-1)?.error?.positionCompacted).toEqual({ regionId: 1n, fromIndex: 6n, oldestIndex: oldest });
    await kv?.close();
    kv = undefined;
    dir.cleanup();
  }
});
