/** Latches: overlapping commands run one at a time, disjoint ones concurrently, and no deadlock. */
import { describe, expect, it } from "vitest";
import { Latches } from "../../src/txn/index.js";
import { Op } from "../../src/proto/kvrpcpb.js";
import { b, startTxnServer } from "./txn-server.js";

/** Resolves to whether `p` settled within `ms`. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setTimeout(r, ms));
  return done;
}

describe("latches", () => {
  it("a command on an overlapping key waits until the holder releases", async () => {
    const latches = new Latches();
    const first = await latches.acquire([b(1), b(2)]);
    const second = latches.acquire([b(2), b(3)]);
    expect(await settlesWithin(second, 30)).toBe(false);
    first.release();
    const guard = await second;
    expect(latches.heldCount).toBe(2);
    guard.release();
    expect(latches.heldCount).toBe(0);
  });

  it("commands on disjoint keys do not wait for each other", async () => {
    const latches = new Latches();
    const first = await latches.acquire([b(1)]);
    expect(
      await settlesWithin(
        latches.acquire([b(2)]).then((g) => g.release()),
        30,
      ),
    ).toBe(true);
    first.release();
    expect(() => first.release()).toThrow(/twice/);
  });

  it("repeated keys in one command are latched once", async () => {
    const latches = new Latches();
    const g = await latches.acquire([b(1), b(1), b(0)]);
    expect(latches.heldCount).toBe(2);
    g.release();
    expect(latches.heldCount).toBe(0);
  });

  it("many random overlapping commands: mutual exclusion per key, all finish (no deadlock)", async () => {
    const latches = new Latches();
    const holders = new Map<number, number>();
    let violations = 0;
    let rng = 12345;
    const rand = (n: number) => {
      rng = (rng * 1103515245 + 12345) & 0x7fffffff;
      return rng % n;
    };
    const commands = Array.from({ length: 300 }, async (_, id) => {
      const keys = Array.from({ length: 1 + rand(4) }, () => rand(10));
      const guard = await latches.acquire(keys.map((k) => b(k)));
      try {
        for (const k of new Set(keys)) {
          if (holders.has(k)) violations++;
          holders.set(k, id);
        }
        await new Promise((r) => setTimeout(r, rand(2)));
        for (const k of new Set(keys)) holders.delete(k);
      } finally {
        guard.release();
      }
    });
    const all = Promise.all(commands);
    const timeout = new Promise((_, reject) =>
      setTimeout(() => reject(new Error("latched commands did not all finish within 10 s: deadlock?")), 10_000),
    );
    await Promise.race([all, timeout]);
    expect(violations).toBe(0);
    expect(latches.heldCount).toBe(0);
  });

  it("concurrent prewrites of one key by many txns over gRPC: exactly one locks it", async () => {
    const srv = await startTxnServer();
    try {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          srv.client.kvPrewrite({
            startVersion: BigInt(100 + i),
            primaryLock: b(7),
            mutations: [{ op: Op.Put, key: b(7), value: b(i) }],
          }),
        ),
      );
      const winners = results.filter((r) => r.errors.length === 0);
      expect(winners).toHaveLength(1);
      for (const r of results) if (r.errors.length > 0) expect(r.errors[0]!.locked?.key).toEqual(b(7));
    } finally {
      await srv.stop();
    }
  });
});
