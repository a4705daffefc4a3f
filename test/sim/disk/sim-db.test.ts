/**
 * The simulated disk's in-memory store against a model: a sorted map copied at every snapshot.
 * Random batches, snapshots, reads, cursors that live across writes and seeks; every read must
 * see exactly what the model saw at the read's snapshot. Seeded (SEED=n replays one).
 */
import { describe, expect, it } from "vitest";
import type { SimDbIterator, SimDbOp, SimDbSnapshot } from "../../../src/kv/engine/sim-db.js";
import { SimDb } from "../../../src/kv/engine/sim-db.js";
import { mulberry32 } from "../../../src/util/random.js";

type Model = Map<string, string>;

function keyOf(n: number): Buffer {
  // Shared prefixes and different lengths, as the engines' CF and region keys have.
  return Buffer.from(`k${n % 3}/${n}`, "latin1");
}

function sortedEntries(model: Model, gte: string, lt: string | undefined): Array<[string, string]> {
  return [...model]
    .filter(([k]) => Buffer.compare(Buffer.from(k, "latin1"), Buffer.from(gte, "latin1")) >= 0)
    .filter(([k]) => lt === undefined || Buffer.compare(Buffer.from(k, "latin1"), Buffer.from(lt, "latin1")) < 0)
    .sort(([a], [b]) => Buffer.compare(Buffer.from(a, "latin1"), Buffer.from(b, "latin1")));
}

interface Cursor {
  it: SimDbIterator;
  expected: Array<[string, string]>;
}

async function runSeed(seed: number): Promise<void> {
  const rng = mulberry32(seed);
  const pick = (n: number) => Math.floor(rng() * n);
  const db = new SimDb();
  let model: Model = new Map();
  const snaps: Array<{ snap: SimDbSnapshot; model: Model }> = [];
  const cursors: Cursor[] = [];
  for (let step = 0; step < 400; step++) {
    const what = pick(10);
    if (what < 4) {
      const ops: SimDbOp[] = [];
      const next = new Map(model);
      for (let i = 0; i < 1 + pick(4); i++) {
        const k = keyOf(pick(40));
        if (pick(3) === 0) {
          ops.push({ type: "del", key: k });
          next.delete(k.toString("latin1"));
        } else {
          const v = `v${step}.${i}`;
          ops.push({ type: "put", key: k, value: Buffer.from(v) });
          next.set(k.toString("latin1"), v);
        }
      }
      await db.batch(ops);
      model = next;
    } else if (what === 4) {
      snaps.push({ snap: db.snapshot(), model });
    } else if (what === 5 && snaps.length > 0) {
      const [s] = snaps.splice(pick(snaps.length), 1);
      await s!.snap.close();
    } else if (what === 6) {
      const k = keyOf(pick(40));
      const at = snaps.length > 0 && pick(2) === 0 ? snaps[pick(snaps.length)]! : undefined;
      const got = await db.get(k, at && { snapshot: at.snap });
      const want = (at?.model ?? model).get(k.toString("latin1"));
      expect(got?.toString(), `seed ${seed} step ${step}: get ${k}`).toBe(want);
    } else if (what === 7) {
      const gte = keyOf(pick(40)).toString("latin1");
      const lt = pick(2) === 0 ? undefined : keyOf(pick(40)).toString("latin1");
      const at = snaps.length > 0 && pick(2) === 0 ? snaps[pick(snaps.length)]! : undefined;
      const it = db.iterator({
        gte: Buffer.from(gte, "latin1"),
        lt: lt && Buffer.from(lt, "latin1"),
        snapshot: at?.snap,
      });
      cursors.push({ it, expected: sortedEntries(at?.model ?? model, gte, lt) });
    } else if (cursors.length > 0) {
      const c = cursors[pick(cursors.length)]!;
      const got = await c.it.next();
      const want = c.expected.shift();
      expect(got && [got[0].toString("latin1"), got[1].toString()], `seed ${seed} step ${step}: cursor`).toEqual(want);
      if (!got) {
        await c.it.close();
        cursors.splice(cursors.indexOf(c), 1);
      }
    }
  }
}

describe("SimDb: the simulated disk's store", () => {
  it("reads what a copied-map model reads, at every snapshot and through cursors that outlive writes", async () => {
    const only = process.env.SEED ? Number(process.env.SEED) : undefined;
    for (const seed of only === undefined ? [1, 2, 3, 4, 5, 6, 7, 8] : [only]) {
      try {
        await runSeed(seed);
      } catch (err) {
        throw new Error(`seed ${seed} (SEED=${seed} replays it): ${err instanceof Error ? err.message : err}`);
      }
    }
  });

  it("seeks within the range, honours limit, and refuses every read once closed", async () => {
    const db = new SimDb();
    await db.batch(
      ["a", "b", "c", "d"].map((k) => ({ type: "put" as const, key: Buffer.from(k), value: Buffer.from(k) })),
    );
    const it = db.iterator({ gte: Buffer.from("b"), lt: Buffer.from("d") });
    it.seek(Buffer.from("a"));
    expect((await it.next())?.[0].toString()).toBe("b");
    it.seek(Buffer.from("c"));
    expect((await it.next())?.[0].toString()).toBe("c");
    expect(await it.next()).toBeUndefined();
    expect((await db.keys({ lt: Buffer.from("c"), limit: 1 }).all()).map(String)).toEqual(["a"]);
    const snap = db.snapshot();
    await db.close();
    await expect(db.get(Buffer.from("a"), { snapshot: snap })).rejects.toThrow(/closed/);
    await expect(db.batch([{ type: "del", key: Buffer.from("a") }])).rejects.toThrow(/closed/);
    await expect(it.next()).rejects.toThrow(/closed/);
  });
});
