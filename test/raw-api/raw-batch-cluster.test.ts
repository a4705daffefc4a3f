// The raw batch and range calls (issue 18) from the TS client against the real binaries over
// gRPC: tinyscheduler + one tinykv-server process with small regions, so every batch, reverse
// scan and delete range spans several regions. One store keeps it fast and free of leader changes
// (a write that meets one may end KvOutcomeUnknownError, which is right but not what this tests).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvClient, RawBatchInputError } from "../../src/client/index.js";
import { FAST_STORE_CONFIG, ProcessCluster } from "../harness/processes.js";
import { ctlShell } from "../harness/ctl.js";
import { waitFor } from "../harness/wait.js";

const N = 1200;
const keyOf = (i: number) => `key-${String(i).padStart(5, "0")}`;
const valueFor = (i: number, round: string) => `${round}-${i}-`.padEnd(100, "x");
const all = Array.from({ length: N }, (_, i) => i);

describe("raw batch and range calls across regions (real binaries)", () => {
  const cluster = new ProcessCluster({ ...FAST_STORE_CONFIG, regionMaxSize: 16 * 1024, regionSplitSize: 12 * 1024 });
  let kv: KvClient;

  beforeAll(async () => {
    await cluster.startScheduler();
    await cluster.addStore(1);
    kv = await KvClient.connect({ scheduler: cluster.schedulerAddr, timeoutMs: 30_000 });
    // Batches of 100 grow the data until it splits: the later calls then span regions.
    for (let base = 0; base < N; base += 100)
      await kv.batchPut(all.slice(base, base + 100).map((i) => ({ key: keyOf(i), value: valueFor(i, "v1") })));
    await waitFor(
      async () => {
        const rs = await kv.getAllRegions();
        return rs.length >= 4 ? rs : undefined;
      },
      {
        timeoutMs: 40_000,
        get message() {
          return `the data never split into 4+ regions\n${cluster.logs()}`;
        },
      },
    );
  }, 120_000);
  afterAll(async () => {
    kv?.close();
    await cluster.shutdown();
  });

  it("batchPut of every key in one call lands in every region, and batchGet reads them back in order", async () => {
    await kv.batchPut(all.map((i) => ({ key: keyOf(i), value: valueFor(i, "v2") })));
    const keys = [...all.map(keyOf), "absent-1", "zzz-absent"];
    const got = await kv.batchGet(keys);
    expect(got.slice(0, N).map((v) => v?.toString())).toEqual(all.map((i) => valueFor(i, "v2")));
    expect(got.slice(N), "keys not found are undefined").toEqual([undefined, undefined]);
    const regions = new Set(all.map(keyOf).map((k) => kv.cache.snapshot().find((r) => inRegion(k, r))?.id));
    expect(regions.size, "the batch spanned several regions").toBeGreaterThanOrEqual(4);
  });

  it("batchDelete removes exactly the keys named, across regions", async () => {
    const gone = all.filter((i) => i % 3 === 0);
    await kv.batchDelete(gone.map(keyOf));
    const got = await kv.batchGet(all.map(keyOf));
    expect(all.filter((i) => got[i] === undefined)).toEqual(gone);
    await kv.batchPut(gone.map((i) => ({ key: keyOf(i), value: valueFor(i, "v2") })));
  });

  it("a reverse scan walks the regions downward: [end, start) in descending order, with a limit", async () => {
    const everything = await kv.scan("", "", N + 10, "", { reverse: true });
    expect(everything.map((p) => p.key.toString())).toEqual([...all].reverse().map(keyOf));
    const part = await kv.scan(keyOf(1000), keyOf(150), 2000, "", { reverse: true });
    expect(
      part.map((p) => p.key.toString()),
      "start is the exclusive upper bound, end the inclusive lower",
    ).toEqual(
      all
        .filter((i) => i >= 150 && i < 1000)
        .reverse()
        .map(keyOf),
    );
    const limited = await kv.scan(keyOf(1000), "", 5, "", { reverse: true });
    expect(limited.map((p) => p.key.toString())).toEqual([999, 998, 997, 996, 995].map(keyOf));
    expect(await kv.scan(keyOf(10), keyOf(20), 10, "", { reverse: true }), "an inverted range is empty").toEqual([]);
  });

  it("deleteRange deletes [start, end) across regions and nothing outside it", async () => {
    await kv.deleteRange(keyOf(100), keyOf(1100));
    const left = await kv.scan("", "", N + 10);
    expect(left.map((p) => p.key.toString())).toEqual(all.filter((i) => i < 100 || i >= 1100).map(keyOf));
    expect((await kv.get(keyOf(99)))?.toString()).toBe(valueFor(99, "v2"));
    expect((await kv.get(keyOf(1100)))?.toString()).toBe(valueFor(1100, "v2"));
    // Written again after the delete: a range delete leaves no tombstone behind.
    await kv.batchPut([{ key: keyOf(500), value: "back" }]);
    expect((await kv.get(keyOf(500)))?.toString()).toBe("back");
  });

  it("tinykv-ctl: scan --reverse and delete-range across regions", async () => {
    await kv.batchPut([0, 1, 2, 1197, 1198, 1199].map((i) => ({ key: keyOf(i), value: `ctl-${i}` })));
    const target = { scheduler: cluster.schedulerAddr };
    const rev = await ctlShell(target, `scan "" --reverse --limit 3\nscan ${keyOf(3)} "" --reverse\n`);
    expect(rev.failures, rev.err).toBe(0);
    expect(rev.out).toBe(
      [
        `${keyOf(1199)} => ctl-1199`,
        `${keyOf(1198)} => ctl-1198`,
        `${keyOf(1197)} => ctl-1197`,
        "(3 pairs)",
        `${keyOf(2)} => ctl-2`,
        `${keyOf(1)} => ctl-1`,
        `${keyOf(0)} => ctl-0`,
        "(3 pairs)",
        "",
      ].join("\n"),
    );
    const del = await ctlShell(
      target,
      `delete-range ${keyOf(1)} ${keyOf(1199)}\nscan "" --limit 10\ndelete-range b a\n`,
    );
    expect(del.failures, "the inverted range fails").toBe(1);
    expect(del.err).toMatch(/delete-range: the range is empty or inverted/);
    expect(del.out).toBe(["OK", `${keyOf(0)} => ctl-0`, `${keyOf(1199)} => ctl-1199`, "(2 pairs)", ""].join("\n"));
  });

  it("a batch with an empty key is refused before any of it is sent", async () => {
    const err = await kv
      .batchPut([
        { key: "fresh-a", value: "1" },
        { key: "", value: "2" },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RawBatchInputError);
    expect(String(err)).toMatch(/key 1 of the batch is empty/);
    expect(await kv.get("fresh-a"), "nothing written").toBeUndefined();
  });
});

function inRegion(key: string, r: { startKey: Buffer; endKey: Buffer }): boolean {
  const k = Buffer.from(key);
  return Buffer.compare(k, r.startKey) >= 0 && (r.endKey.length === 0 || Buffer.compare(k, r.endKey) < 0);
}
