// KvClient.watch over real gRPC against three stores: every committed change of the range exactly
// once, in (commit_ts, key) order; and a watch stopped midway resumes from its last position
// (a change's (commit_ts, key), or a resolved ts) with no gap and no duplicate.
import { afterEach, describe, expect, it } from "vitest";
import type { KvClient } from "../../src/client/client.js";
import type { Written } from "./watch-cluster.js";
import { byPosition, collectUntil, commitTxn, WatchCluster, writtenOf } from "./watch-cluster.js";

let cluster: WatchCluster | undefined;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = undefined;
});

/** `writers` concurrent writers' transactions, each putting or deleting 1-3 keys under w/ and one key outside. */
async function writeConcurrently(kv: KvClient, writers: number, txnsEach: number): Promise<Written[]> {
  const all: Written[] = [];
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; i < txnsEach; i++) {
        const keys = 1 + ((w + i) % 3);
        const puts: Array<[string, string | undefined]> = [];
        for (let k = 0; k < keys; k++) {
          // Each writer its own keys: concurrent writers, no write conflicts to retry.
          const key = `w/${w}/${(i * 3 + k) % 7}`;
          puts.push([key, (i + k) % 5 === 4 ? undefined : `v${w}.${i}.${k}`]);
        }
        puts.push([`x/${w}`, `outside ${i}`]);
        all.push(...(await commitTxn(kv, puts)).filter((c) => c.key.startsWith("w/")));
      }
    }),
  );
  return all.sort(byPosition);
}

describe("watch: a change feed over real gRPC", () => {
  it("delivers every committed change of the range exactly once, in commit order", async () => {
    cluster = new WatchCluster();
    const kv = await cluster.start();
    await commitTxn(kv, [["w/before", "old"]]); // committed before the watch's start: not delivered
    const fromTs = await kv.tso();
    const watch = kv.watch("w/", { fromTs });
    // The watch reads while the writes run: its rows come live from apply, not from a scan.
    let expected: Written[] = [];
    const done = writeConcurrently(kv, 3, 6).then(async (w) => {
      expected = w;
      return kv.tso();
    });
    const seen = await collectUntil(watch, done, 20_000);
    watch.stop();
    expect(seen).toEqual(expected);
  }, 90_000);

  it("resumes after a disconnect from the last change or the last resolved ts: no gap, no duplicate", async () => {
    cluster = new WatchCluster();
    const kv = await cluster.start();
    const fromTs = await kv.tso();
    const expected = await writeConcurrently(kv, 3, 10);
    const half = Math.floor(expected.length / 2);

    // Consume half the changes, then drop the watch: the position is the last change consumed.
    const first = kv.watch("w/", { fromTs });
    const seen: Written[] = [];
    let lastResolved = fromTs;
    let resolvedAt = 0;
    for await (const ev of first) {
      if (ev.type === "resolved") {
        lastResolved = ev.ts;
        resolvedAt = seen.length;
        continue;
      }
      seen.push(writtenOf(ev));
      if (seen.length === half) break; // for-await's break stops the watch
    }
    const last = seen[seen.length - 1]!;
    // Some changes commit while nobody watches.
    const later = await writeConcurrently(kv, 2, 5);
    const all = [...expected, ...later].sort(byPosition);

    const resumed = kv.watch("w/", { fromTs: last.commitTs, afterKey: Buffer.from(last.key) });
    const rest = await collectUntil(resumed, await kv.tso(), 15_000);
    resumed.stop();
    expect([...seen, ...rest], "resumed after the last change").toEqual(all);

    // From the last resolved ts instead: everything after it, once.
    const fromResolved = kv.watch("w/", { fromTs: lastResolved });
    const again = await collectUntil(fromResolved, await kv.tso(), 15_000);
    fromResolved.stop();
    expect([...seen.slice(0, resolvedAt), ...again], "resumed after the last resolved ts").toEqual(all);
  }, 90_000);
});
