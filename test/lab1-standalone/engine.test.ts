import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ClassicLevel } from "classic-level";
import { ALL_CFS, CF_DEFAULT, CF_LOCK, CF_WRITE, ENGINE_END_KEY, Engine, cfKey } from "../../src/kv/engine/index.js";
import { ensureKeyLayout } from "../../src/kv/raftstore/index.js";
import { tempDir } from "../harness/wait.js";
import type { EngineHome } from "./engine-backends.js";
import { ENGINE_BACKENDS } from "./engine-backends.js";

const b = (s: string) => Buffer.from(s);

describe.each(ENGINE_BACKENDS)("lab1 engine on $name", (backend) => {
  let home: EngineHome;
  let engine: Engine;

  beforeEach(async () => {
    home = backend.home();
    engine = await home.open();
  });
  afterEach(async () => {
    await engine.close();
    home.cleanup();
  });

  it("keeps column families apart", async () => {
    await engine
      .newBatch()
      .put(CF_DEFAULT, b("k"), b("d"))
      .put(CF_LOCK, b("k"), b("l"))
      .put(CF_WRITE, b("k"), b("w"))
      .write(true);
    expect((await engine.get(CF_DEFAULT, b("k")))?.toString()).toBe("d");
    expect((await engine.get(CF_LOCK, b("k")))?.toString()).toBe("l");
    expect((await engine.get(CF_WRITE, b("k")))?.toString()).toBe("w");
    await engine.newBatch().delete(CF_LOCK, b("k")).write(true);
    expect(await engine.get(CF_LOCK, b("k"))).toBeUndefined();
    expect((await engine.get(CF_DEFAULT, b("k")))?.toString()).toBe("d");
  });

  it("writes a batch atomically: all of it is visible together", async () => {
    const snapBefore = engine.snapshot();
    const batch = engine.newBatch();
    for (let i = 0; i < 100; i++) batch.put(CF_DEFAULT, b(`key${i}`), b(`v${i}`));
    await batch.write(true);
    const cursor = snapBefore.cursor(CF_DEFAULT);
    await cursor.seek(Buffer.alloc(0));
    expect(cursor.valid).toBe(false);
    await cursor.close();
    await snapBefore.close();
    const snap = engine.snapshot();
    const all = snap.cursor(CF_DEFAULT);
    await all.seek(Buffer.alloc(0));
    expect((await all.take(1000)).length).toBe(100);
    await all.close();
    await snap.close();
  });

  it("bounds a cursor to its CF and its range", async () => {
    const batch = engine.newBatch();
    for (const k of ["a", "b", "c", "d"]) batch.put(CF_DEFAULT, b(k), b(k.toUpperCase()));
    batch.put(CF_LOCK, b("b2"), b("lock"));
    batch.put(CF_WRITE, b("0"), b("write"));
    await batch.write(true);
    const snap = engine.snapshot();
    const ranged = snap.cursor(CF_DEFAULT, b("b"), b("d"));
    await ranged.seek(b("a"));
    expect((await ranged.take(10)).map((e) => e.key.toString())).toEqual(["b", "c"]);
    await ranged.close();
    const whole = snap.cursor(CF_DEFAULT);
    await whole.seek(b(""));
    expect((await whole.take(10)).map((e) => e.key.toString())).toEqual(["a", "b", "c", "d"]);
    await whole.close();
    const lock = snap.cursor(CF_LOCK);
    await lock.seek(b(""));
    expect((await lock.take(10)).map((e) => e.value.toString())).toEqual(["lock"]);
    await lock.close();
    await snap.close();
  });

  it("gives a reader a point-in-time view that later writes do not change", async () => {
    await engine.newBatch().put(CF_DEFAULT, b("k1"), b("before")).put(CF_DEFAULT, b("k2"), b("before")).write(true);
    const snap = engine.snapshot();
    await engine
      .newBatch()
      .put(CF_DEFAULT, b("k1"), b("after"))
      .delete(CF_DEFAULT, b("k2"))
      .put(CF_DEFAULT, b("k3"), b("new"))
      .write(true);
    expect((await snap.get(CF_DEFAULT, b("k1")))?.toString()).toBe("before");
    expect((await snap.get(CF_DEFAULT, b("k2")))?.toString()).toBe("before");
    expect(await snap.get(CF_DEFAULT, b("k3"))).toBeUndefined();
    const cursor = snap.cursor(CF_DEFAULT);
    await cursor.seek(b(""));
    expect((await cursor.take(10)).map((e) => `${e.key}=${e.value}`)).toEqual(["k1=before", "k2=before"]);
    await cursor.close();
    await snap.close();
    expect((await engine.get(CF_DEFAULT, b("k1")))?.toString()).toBe("after");
  });

  it("clamps a seek to the cursor's bounds and filters keys it is told to skip", async () => {
    const batch = engine.newBatch();
    for (const k of ["a", "b", "c", "d", "e"]) batch.put(CF_DEFAULT, b(k), b(k));
    await batch.write(false);
    const snap = engine.snapshot();
    const ranged = snap.cursor(CF_DEFAULT, b("b"), b("e"), (key) => key.toString() !== "c");
    await ranged.seek(b(""));
    expect(ranged.key.toString()).toBe("b");
    expect((await ranged.take(10)).map((e) => e.key.toString())).toEqual(["b", "d"]);
    await ranged.seek(b("e"));
    expect(ranged.valid).toBe(false);
    await ranged.close();
    await snap.close();
  });

  it("keeps meta keys out of every CF and iterates them raw", async () => {
    const meta = (n: number) => Buffer.from([0x01, 0x02, n]);
    await engine
      .newBatch()
      .putMeta(meta(2), b("m2"))
      .putMeta(meta(1), b("m1"))
      .put(CF_DEFAULT, b("k"), b("v"))
      .write(true);
    expect((await engine.getMeta(meta(1)))?.toString()).toBe("m1");
    const snap = engine.snapshot().share();
    await engine.newBatch().deleteMeta(meta(1)).write(true);
    const raw: string[] = [];
    for await (const e of snap.rawRange(meta(0), meta(9))) raw.push(e.value.toString());
    expect(raw).toEqual(["m1", "m2"]);
    const cursor = snap.cursor(CF_DEFAULT);
    await cursor.seek(b(""));
    expect((await cursor.take(10)).map((e) => e.key.toString())).toEqual(["k"]);
    await cursor.close();
    await snap.close();
    expect((await snap.getMeta(meta(1)))?.toString()).toBe("m1"); // one owner left: still open
    await snap.close();
    expect(await engine.getMeta(meta(1))).toBeUndefined();
  });

  it("refuses a second open of a locked data dir with a clear error", async () => {
    await expect(home.open()).rejects.toThrow(/locked by another process/);
  });
});

describe("lab1 engine on classic-level: the end key", () => {
  // classic-level answers a seek that finds nothing at or after its target by walking to the
  // first and the last key of the database, which under a snapshot steps back over every newer
  // write at the tail: each new key's write-CF lookup in a large prewrite cost milliseconds
  // (`node dist/bench/big-txn.js --keys 30000`). A key after every CF key keeps such seeks short.
  it("every engine holds a key after every CF and meta key, and an old data dir gets it on open", async () => {
    const dir = tempDir();
    try {
      const raw = new ClassicLevel<Buffer, Buffer>(dir.path, { keyEncoding: "buffer", valueEncoding: "buffer" });
      await raw.put(b("write_x"), b("w"));
      await raw.close();
      const engine = await Engine.open(dir.path);
      try {
        expect(await engine.getMeta(ENGINE_END_KEY)).toEqual(Buffer.alloc(0));
        for (const cf of ALL_CFS)
          expect(Buffer.compare(cfKey(cf, Buffer.alloc(64, 0xff)), ENGINE_END_KEY)).toBeLessThan(0);
        const snap = engine.snapshot();
        const cursor = snap.cursor(CF_WRITE);
        await cursor.seek(b("y"));
        expect(cursor.valid).toBe(false);
        await cursor.seek(b("x"));
        expect(cursor.key.toString()).toBe("x");
        await cursor.close();
        await snap.close();
      } finally {
        await engine.close();
      }
    } finally {
      dir.cleanup();
    }
  });

  it("a data dir holding only the end key is empty to the key-layout check", async () => {
    const dir = tempDir();
    try {
      const engine = await Engine.open(dir.path);
      await expect(ensureKeyLayout(engine)).resolves.toBeUndefined();
      await engine.close();
    } finally {
      dir.cleanup();
    }
  });
});
