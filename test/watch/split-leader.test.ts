// Issue 18's watch test: a watch across region splits and a leader kill (the store leading the
// watched keys stops) still delivers every change exactly once, in commit order.
import { afterEach, expect, it } from "vitest";
import type { KvClient } from "../../src/client/client.js";
import { waitFor } from "../harness/wait.js";
import type { Written } from "./watch-cluster.js";
import { byPosition, collectUntil, commitTxn, WatchCluster } from "./watch-cluster.js";

let cluster: WatchCluster | undefined;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = undefined;
});

const PAD = "v".repeat(200);

/** Transactions of 3 keys each under s/, numbered from `from`. */
async function writeRange(kv: KvClient, from: number, count: number): Promise<Written[]> {
  const out: Written[] = [];
  for (let i = from; i < from + count; i++) {
    const puts: Array<[string, string | undefined]> = [0, 1, 2].map((k) => [
      `s/${String((i * 3 + k) % 90).padStart(3, "0")}`,
      i % 7 === 6 && k === 0 ? undefined : `${i}.${k}.${PAD}`,
    ]);
    out.push(...(await commitTxn(kv, puts)));
  }
  return out;
}

it("a watch across region splits and a leader kill delivers every change exactly once, in order", async () => {
  // Regions split at about 2 KB: the writes below split the watched range, once or more.
  cluster = new WatchCluster({ config: { regionMaxSize: 2400, regionSplitSize: 1600, splitRegionCheckTickMs: 50 } });
  const c = cluster;
  const kv = await c.start();
  const fromTs = await kv.tso();
  const watch = kv.watch("s/", { fromTs });
  const expected: Written[] = [];
  const writes = (async () => {
    expected.push(...(await writeRange(kv, 0, 8)));
    await waitFor(async () => (await kv.getAllRegions()).length >= 2, {
      timeoutMs: 10_000,
      message: "the watched range never split",
    });
    // Kill the store leading the middle of the watched keys; the others keep a quorum.
    const victim = await waitFor(() => c.leaderOf(Buffer.from("s/045")), {
      timeoutMs: 5_000,
      message: "no leader known for s/045",
    });
    await c.stopStore(victim);
    expected.push(...(await writeRange(kv, 8, 5)));
    return kv.tso();
  })();
  const seen = await collectUntil(watch, writes, 30_000);
  watch.stop();
  expect(seen.length).toBe(expected.length);
  expect(seen).toEqual(expected.sort(byPosition));
}, 90_000);
