/**
 * TTL meets the range calls: a reverse scan hides expired keys as a forward one does, and a range
 * delete takes the deleted keys' expiries with it, so a key put again without a ttl never expires.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CF_DEFAULT } from "../../src/kv/engine/index.js";
import { RawKeyspace, StandaloneStorage } from "../../src/kv/storage/index.js";
import { tempDir } from "../harness/wait.js";

describe("raw TTL with reverse scans and range deletes", () => {
  let dir: ReturnType<typeof tempDir>;
  let storage: StandaloneStorage;
  let nowMs = 1_000_000;
  let raw: RawKeyspace;
  const b = (s: string) => Buffer.from(s);

  beforeAll(async () => {
    dir = tempDir();
    storage = new StandaloneStorage(dir.path);
    await storage.start();
    raw = new RawKeyspace(storage, { now: () => nowMs });
  });
  afterAll(async () => {
    await storage.stop();
    dir.cleanup();
  });

  const scan = async (reverse: boolean): Promise<string[]> => {
    const reader = await raw.reader(undefined);
    const cursor = reader.iterCF(CF_DEFAULT, { reverse });
    const keys: string[] = [];
    try {
      await cursor.seek(reverse ? b("z") : b(""));
      for (; cursor.valid; await cursor.next()) keys.push(cursor.key.toString());
    } finally {
      await cursor.close();
      await reader.close();
    }
    return keys;
  };

  it("a reverse scan skips expired keys", async () => {
    await raw.write(undefined, [
      { kind: "put", cf: CF_DEFAULT, key: b("a"), value: b("1") },
      { kind: "put", cf: CF_DEFAULT, key: b("b"), value: b("2"), ttlSeconds: 10n },
      { kind: "put", cf: CF_DEFAULT, key: b("c"), value: b("3") },
      { kind: "put", cf: CF_DEFAULT, key: b("d"), value: b("4"), ttlSeconds: 10n },
    ]);
    expect(await scan(true)).toEqual(["d", "c", "b", "a"]);
    nowMs += 11_000;
    expect(await scan(false), "forward, after b and d expired").toEqual(["a", "c"]);
    expect(await scan(true), "reverse, after b and d expired").toEqual(["c", "a"]);
  });

  it("a range delete removes the expiries too: a key put again without a ttl stays", async () => {
    await raw.write(undefined, [{ kind: "put", cf: CF_DEFAULT, key: b("k"), value: b("old"), ttlSeconds: 5n }]);
    await raw.write(undefined, [{ kind: "deleteRange", cf: CF_DEFAULT, start: b("a"), end: b("z") }]);
    expect(await scan(false)).toEqual([]);
    // Written straight to the value CF, as a key restored from a backup would be: no expiry write.
    await storage.write(undefined, [{ kind: "put", cf: "raw_default", key: b("k"), value: b("new") }]);
    nowMs += 6_000;
    const reader = await raw.reader(undefined);
    try {
      expect((await reader.getCF(CF_DEFAULT, b("k")))?.toString(), "the old expiry went with the range").toBe("new");
    } finally {
      await reader.close();
    }
  });
});
