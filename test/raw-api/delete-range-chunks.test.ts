// A raw delete range over many keys is proposed as several entries of a bounded number of keys
// each (apply lists an entry's keys in memory), in key order, and still deletes every key.
import { afterEach, describe, expect, it } from "vitest";
import { CF_DEFAULT } from "../../src/kv/engine/index.js";
import type { Modify, RawModify, Storage } from "../../src/kv/storage/index.js";
import { rawKeyspace, StandaloneStorage } from "../../src/kv/storage/index.js";
import { tempDir } from "../harness/wait.js";

const b = (s: string) => Buffer.from(s);
const key = (i: number) => b(`k${String(i).padStart(3, "0")}`);

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

/** A standalone storage that records the range deletes written through it. */
async function recordingStorage(): Promise<{ storage: Storage; ranges: string[] }> {
  const dir = tempDir("tinykv-delrange-chunks-");
  const inner = new StandaloneStorage(dir.path);
  await inner.start();
  cleanup = async () => {
    await inner.stop();
    dir.cleanup();
  };
  const ranges: string[] = [];
  const storage: Storage = {
    start: () => inner.start(),
    stop: () => inner.stop(),
    reader: (ctx) => inner.reader(ctx),
    conditionalWrite: (ctx, cw) => inner.conditionalWrite(ctx, cw),
    write: (ctx, batch: Modify[]) => {
      const range = batch.find((m) => m.kind === "deleteRange");
      if (range?.kind === "deleteRange") ranges.push(`${range.start}..${range.end}`);
      return inner.write(ctx, batch);
    },
  };
  return { storage, ranges };
}

describe("raw delete range in chunks", () => {
  it("deletes 25 keys in entries of at most 10, in key order, leaving the keys outside the range", async () => {
    const { storage, ranges } = await recordingStorage();
    const raw = rawKeyspace(storage);
    const writes: RawModify[] = Array.from({ length: 30 }, (_, i) => ({
      kind: "put" as const,
      cf: CF_DEFAULT,
      key: key(i),
      value: b("v"),
    }));
    await raw.write(undefined, writes);
    await raw.deleteRange(undefined, CF_DEFAULT, key(2), key(27), 10);
    expect(ranges).toEqual(["k002..k012", "k012..k022", "k022..k027"]);
    const reader = await raw.reader(undefined);
    const left: string[] = [];
    for (let i = 0; i < 30; i++) if ((await reader.getCF(CF_DEFAULT, key(i))) !== undefined) left.push(String(i));
    await reader.close();
    expect(left).toEqual(["0", "1", "27", "28", "29"]);
  });

  it("also ends a chunk once its keys reach 4 MiB (keys may be 8 KiB each)", async () => {
    const { storage, ranges } = await recordingStorage();
    const raw = rawKeyspace(storage);
    const big = (i: number) => Buffer.concat([key(i), Buffer.alloc(8 * 1024 - 4, "x")]);
    await raw.write(
      undefined,
      Array.from({ length: 600 }, (_, i) => ({ kind: "put" as const, cf: CF_DEFAULT, key: big(i), value: b("v") })),
    );
    await raw.deleteRange(undefined, CF_DEFAULT, Buffer.alloc(0), Buffer.alloc(0));
    // 512 keys of 8 KiB make 4 MiB: the first chunk ends at the 513th key.
    expect(ranges.map((r) => r.split("..").map((k) => k.slice(0, 4)))).toEqual([
      ["", "k512"],
      ["k512", ""],
    ]);
  });

  it("proposes one entry for a range within the bound, and one for an empty range", async () => {
    const { storage, ranges } = await recordingStorage();
    const raw = rawKeyspace(storage);
    await raw.write(undefined, [{ kind: "put", cf: CF_DEFAULT, key: key(1), value: b("v") }]);
    await raw.deleteRange(undefined, CF_DEFAULT, key(0), Buffer.alloc(0), 10);
    await raw.deleteRange(undefined, CF_DEFAULT, key(5), key(9), 10);
    expect(ranges).toEqual(["k000..", "k005..k009"]);
  });
});
