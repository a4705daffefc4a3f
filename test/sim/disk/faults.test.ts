import { describe, expect, it } from "vitest";
import { CF_DEFAULT, EngineCrashedError, SimDisk, SyncFailedError } from "../../../src/kv/engine/index.js";

const b = (s: string) => Buffer.from(s);

/** A hand-driven clock for the disk's delay hook: nothing waits on real time. */
class ManualClock {
  now = 0;
  private waiting: Array<{ at: number; resolve: () => void }> = [];

  readonly delay = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      this.waiting.push({ at: this.now + ms, resolve });
    });

  get pending(): number {
    return this.waiting.length;
  }

  /** Moves time on and lets every write due by then land; queued writes get to ask for their delay first. */
  async advance(ms: number): Promise<void> {
    await settle();
    this.now += ms;
    const due = this.waiting.filter((w) => w.at <= this.now).sort((x, y) => x.at - y.at);
    this.waiting = this.waiting.filter((w) => w.at > this.now);
    for (const w of due) w.resolve();
    await settle();
  }
}

/** Lets every promise continuation run (one macrotask turn; no time passes for the disk). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("simulated disk: faults", () => {
  it("fails a synced write with SyncFailedError, keeps it invisible, and refuses later writes until reopened", async () => {
    const disk = new SimDisk({ name: "store1" });
    const engine = await disk.open("raft");
    await engine.newBatch().put(CF_DEFAULT, b("a"), b("1")).write(true);
    disk.faults.failSync = (file) => file === "raft";
    const failed = engine.newBatch().put(CF_DEFAULT, b("b"), b("2")).write(true);
    await expect(failed).rejects.toBeInstanceOf(SyncFailedError);
    await expect(failed).rejects.toThrow("sim://store1/raft: fsync failed");
    expect(await engine.get(CF_DEFAULT, b("b"))).toBeUndefined();
    // As LevelDB after a failed log sync: even an unsynced write is refused now.
    disk.faults.failSync = undefined;
    await expect(engine.newBatch().put(CF_DEFAULT, b("c"), b("3")).write(false)).rejects.toThrow(
      /refused after an earlier fsync failure/,
    );
    expect((await engine.get(CF_DEFAULT, b("a")))?.toString()).toBe("1");
    await engine.close();

    // The failed record may come back after a restart (it reached the log, not surely the platter).
    const reopened = await disk.open("raft");
    expect((await reopened.get(CF_DEFAULT, b("b")))?.toString()).toBe("2");
    await reopened.newBatch().put(CF_DEFAULT, b("c"), b("3")).write(true);
    expect((await reopened.get(CF_DEFAULT, b("c")))?.toString()).toBe("3");
    await reopened.close();
  });

  it("lets a power loss drop the write whose fsync failed", async () => {
    const disk = new SimDisk();
    const engine = await disk.open("kv");
    disk.faults.failSync = () => true;
    await expect(engine.newBatch().put(CF_DEFAULT, b("x"), b("1")).write(true)).rejects.toBeInstanceOf(SyncFailedError);
    disk.faults.failSync = undefined;
    await disk.powerLoss(() => 0);
    const reopened = await disk.open("kv");
    expect(await reopened.get(CF_DEFAULT, b("x"))).toBeUndefined();
    await reopened.close();
  });

  it("delays writes through the injected clock, lands them in order, and loses those in flight at a crash", async () => {
    const clock = new ManualClock();
    const disk = new SimDisk({ delay: clock.delay });
    const engine = await disk.open("kv");
    const seen: Array<{ sync: boolean; ops: number }> = [];
    disk.faults.writeLatencyMs = (w) => {
      seen.push({ sync: w.sync, ops: w.ops });
      return w.sync ? 10 : 1;
    };
    const landed: string[] = [];
    const first = engine
      .newBatch()
      .put(CF_DEFAULT, b("k"), b("first"))
      .write(true)
      .then(() => landed.push("first"));
    const second = engine
      .newBatch()
      .put(CF_DEFAULT, b("k"), b("second"))
      .write(false)
      .then(() => landed.push("second"));
    await clock.advance(5);
    expect(landed).toEqual([]);
    expect(await engine.get(CF_DEFAULT, b("k"))).toBeUndefined();
    await clock.advance(5);
    await first;
    expect(landed).toEqual(["first"]);
    await clock.advance(1);
    await second;
    expect(landed).toEqual(["first", "second"]);
    expect(seen).toEqual([
      { sync: true, ops: 1 },
      { sync: false, ops: 1 },
    ]);
    expect((await engine.get(CF_DEFAULT, b("k")))?.toString()).toBe("second");

    const inFlight = engine
      .newBatch()
      .put(CF_DEFAULT, b("k"), b("in flight"))
      .write(true)
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    await settle();
    expect(clock.pending).toBe(1);
    await disk.crash();
    await clock.advance(10);
    expect(await inFlight).toBeInstanceOf(EngineCrashedError);
    disk.faults.writeLatencyMs = undefined;
    const reopened = await disk.open("kv");
    expect((await reopened.get(CF_DEFAULT, b("k")))?.toString()).toBe("second");
    await reopened.close();
  });

  it("refuses a latency fault without a delay hook rather than sleeping on real time", async () => {
    const disk = new SimDisk();
    const engine = await disk.open("kv");
    disk.faults.writeLatencyMs = () => 5;
    await expect(engine.newBatch().put(CF_DEFAULT, b("k"), b("v")).write(false)).rejects.toThrow(/no delay hook/);
    await engine.close();
  });

  it("stops a crashed engine: its reads and writes fail and its old batches cannot reach the reopened one", async () => {
    const disk = new SimDisk();
    const engine = await disk.open("kv");
    await engine.newBatch().put(CF_DEFAULT, b("k"), b("v")).write(false);
    const stale = engine.newBatch().put(CF_DEFAULT, b("k"), b("from the dead"));
    await disk.crash();
    await expect(engine.get(CF_DEFAULT, b("k"))).rejects.toThrow();
    const reopened = await disk.open("kv");
    await expect(stale.write(true)).rejects.toBeInstanceOf(EngineCrashedError);
    expect((await reopened.get(CF_DEFAULT, b("k")))?.toString()).toBe("v");
    await reopened.close();
  });
});
