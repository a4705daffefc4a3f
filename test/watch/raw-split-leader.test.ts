// The raw watch across region splits and a leader kill (the store leading the middle of the
// watched keys stops): every change is delivered exactly once, each key's changes in the order
// they were made (a split's new region is followed from the start of its log, after the parent's
// changes up to the split).
import { afterEach, expect, it } from "vitest";
import type { KvClient } from "../../src/client/client.js";
import type { RawWatchEvent } from "../../src/client/raw-watch.js";
import { waitFor } from "../harness/wait.js";
import { describe, expectRaftOrder, readUntil, sawInitialized } from "./raw-watch-helpers.js";
import { WatchCluster } from "./watch-cluster.js";

let cluster: WatchCluster | undefined;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = undefined;
});

const PAD = "v".repeat(200);

/** Each key's changes in order: a value, or "-" for a delete. */
type History = Map<string, string[]>;

function record(h: History, key: string, change: string): void {
  const list = h.get(key) ?? [];
  list.push(change);
  h.set(key, list);
}

/** Writes `count` raw changes to keys s/000..s/089 from round `from` on (every 7th a delete). */
async function writeRounds(kv: KvClient, from: number, count: number, h: History): Promise<void> {
  for (let i = from; i < from + count; i++) {
    const key = `s/${String((i * 7) % 90).padStart(3, "0")}`;
    if (i % 7 === 6) {
      await kv.delete(key);
      record(h, key, "-");
    } else {
      await kv.put(key, `${i}.${PAD}`);
      record(h, key, `${i}.${PAD}`);
    }
  }
}

const SENTINEL = "s/zz-sentinel";

function historyOf(events: RawWatchEvent[]): History {
  const h: History = new Map();
  for (const e of events) {
    if ((e.type === "put" || e.type === "delete") && e.key.toString() === SENTINEL) continue;
    if (e.type === "put") record(h, e.key.toString(), e.value.toString());
    else if (e.type === "delete") record(h, e.key.toString(), "-");
  }
  return h;
}

const count = (h: History) => [...h.values()].reduce((n, l) => n + l.length, 0);

it("a raw watch across region splits and a leader kill delivers every change exactly once, in order", async () => {
  // Regions split at about 2 KB: the writes below split the watched range, more than once.
  cluster = new WatchCluster({ config: { regionMaxSize: 2400, regionSplitSize: 1600, splitRegionCheckTickMs: 50 } });
  const c = cluster;
  const kv = await c.start();
  const watch = kv.watchRaw("s/");
  const written: History = new Map();
  const events: RawWatchEvent[] = [];
  try {
    await readUntil(watch, sawInitialized, 10_000, "INITIALIZED", events);
    const writes = (async () => {
      await writeRounds(kv, 0, 60, written);
      await waitFor(async () => (await kv.getAllRegions()).length >= 3, {
        timeoutMs: 10_000,
        message: "the watched range never split twice",
      });
      // Kill the store leading the middle of the watched keys; the others keep a quorum.
      const victim = await waitFor(() => c.leaderOf(Buffer.from("s/045")), {
        timeoutMs: 5_000,
        message: "no leader known for s/045",
      });
      await c.stopStore(victim);
      await writeRounds(kv, 60, 40, written);
      return count(written);
    })();
    let total: number | undefined;
    const finished = writes.then(async (n) => {
      total = n;
      // The watch may have delivered the last change before its put returned: one more event
      // makes the reader look at the count again.
      await kv.put(SENTINEL, "done");
    });
    // Awaited below; a failure of the writes must not also surface as an unhandled rejection.
    finished.catch(() => undefined);
    try {
      await readUntil(
        watch,
        (evs) => total !== undefined && count(historyOf(evs)) >= total,
        40_000,
        "every change",
        events,
      );
    } catch (err) {
      const seen = historyOf(events);
      const missing = [...written].filter(([k, l]) => JSON.stringify(seen.get(k) ?? []) !== JSON.stringify(l));
      const show = (l: string[] | undefined) => (l ?? []).map((v) => v.slice(0, 4)).join(",");
      throw new Error(
        `${(err as Error).message.slice(0, 200)}...; keys whose changes differ (written / seen): ${missing.map(([k, l]) => `${k}: ${show(l)} / ${show(seen.get(k))}`).join("; ")}; regions: ${[...new Set(events.map((e) => e.regionId))].join(",")}; last events: ${events.slice(-15).map(describe).join(", ")}`,
      );
    }
    await finished;
  } finally {
    watch.stop();
  }
  const seen = historyOf(events);
  expect(count(seen)).toBe(count(written));
  expect(new Map([...seen].sort())).toEqual(new Map([...written].sort()));
  expectRaftOrder(events);
  // The watch followed more than one region.
  expect(new Set(events.map((e) => e.regionId)).size).toBeGreaterThan(1);
}, 90_000);

it("a raw watch resumed from positions taken before splits replays the old region up to each split, then both parts", async () => {
  cluster = new WatchCluster({ config: { regionMaxSize: 2400, regionSplitSize: 1600, splitRegionCheckTickMs: 50 } });
  const kv = await cluster.start();
  const first = kv.watchRaw("s/");
  const written: History = new Map();
  let positions: ReturnType<typeof first.positions>;
  try {
    await readUntil(first, sawInitialized, 10_000, "INITIALIZED");
    await writeRounds(kv, 0, 3, written);
    await readUntil(first, (evs) => count(historyOf(evs)) >= 3, 10_000, "the first three changes");
    positions = first.positions();
  } finally {
    first.stop();
  }
  expect(positions.length).toBe(1);
  // While nobody watches, the range splits (more than once) and takes more changes.
  await writeRounds(kv, 3, 60, written);
  await waitFor(async () => (await kv.getAllRegions()).length >= 3, {
    timeoutMs: 10_000,
    message: "the watched range never split twice",
  });
  await writeRounds(kv, 63, 10, written);
  const second = kv.watchRaw("s/", { from: positions });
  const events: RawWatchEvent[] = [];
  try {
    const total = count(written) - 3;
    await readUntil(second, (evs) => count(historyOf(evs)) >= total, 30_000, "the changes made meanwhile", events);
  } finally {
    second.stop();
  }
  // What came after the first three changes (rounds 0-2: keys s/000, s/007, s/014), once each.
  const seen = historyOf(events);
  const after = new Map([...written].filter(([k]) => !["s/000", "s/007", "s/014"].includes(k)));
  expect(new Map([...seen].sort())).toEqual(new Map([...after].sort()));
  expectRaftOrder(events);
  expect(new Set(events.map((e) => e.regionId)).size).toBeGreaterThan(1);
}, 90_000);
