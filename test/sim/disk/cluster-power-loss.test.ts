import { afterEach, describe, expect, it } from "vitest";
import { TestCluster } from "../../harness/cluster.js";
import { seededRng, testSeed } from "../../harness/rng.js";
import { waitFor } from "../../harness/wait.js";

/**
 * The in-process cluster on the simulated disk: stores lose power with writes in flight and
 * restart from what their disks kept. Whatever the cluster acknowledged must still be there.
 * Seeded (the network, the store chosen, the unsynced suffix each disk keeps): SEED=<n> replays
 * the same choices, though the store timers still run on real time until the simulator drives them.
 */

const WRITERS = 4;

/** Concurrent writers of distinct keys; `acked` holds every put the cluster answered with success. */
class Workload {
  readonly acked = new Map<string, string>();
  private stopped = false;
  private failure: Error | undefined;
  private readonly loops: Array<Promise<void>> = [];

  constructor(
    private readonly cluster: TestCluster,
    /** Names the run (its seed) in every failure. */
    private readonly context: string,
  ) {}

  start(): void {
    for (let w = 0; w < WRITERS; w++) this.loops.push(this.writer(w));
  }

  private async writer(w: number): Promise<void> {
    for (let n = 0; !this.stopped && !this.failure; n++) {
      const key = `w${w}-${String(n).padStart(5, "0")}`;
      const value = `value of ${key}`;
      try {
        await this.cluster.put(key, value);
      } catch (err) {
        this.failure ??= new Error(
          `${this.context}: writer ${w}: ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        );
        return;
      }
      this.acked.set(key, value);
    }
  }

  /** Writes on until `count` more puts are acknowledged (a deadline bounds the wait). */
  async ackMore(count: number, what: string): Promise<void> {
    const target = this.acked.size + count;
    await waitFor(() => this.failure !== undefined || this.acked.size >= target, {
      timeoutMs: 20_000,
      message: `${what}: only ${this.acked.size} of ${target} puts acknowledged`,
    });
    if (this.failure) throw this.failure;
  }

  /** Stops the writers; throws the first writer's failure, if any. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    if (this.failure) throw this.failure;
  }
}

async function expectAllAcked(cluster: TestCluster, acked: Map<string, string>, context: string): Promise<void> {
  const rows = await cluster.scan("", "");
  const stored = new Map(rows.map((r) => [r.key.toString(), r.value.toString()]));
  const missing = [...acked].filter(([k, v]) => stored.get(k) !== v).map(([k]) => k);
  expect(missing, `${context}: acknowledged puts lost\n${cluster.dump()}`).toEqual([]);
}

describe("simulated disk under a cluster: power loss", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("loses no acknowledged write when one store loses power mid-write and restarts", async () => {
    const seed = testSeed();
    const rng = seededRng(seed);
    const context = `seed ${seed} (replay with SEED=${seed})`;
    cluster = new TestCluster({ stores: 3, seed, disk: "sim" });
    await cluster.start();
    const work = new Workload(cluster, context);
    work.start();
    try {
      await work.ackMore(30, context);
      // The leader half the time: its unsynced apply writes and log tail are what is at stake.
      const leader = cluster.leaderOf(1n);
      const victim = leader !== undefined && rng() < 0.5 ? leader : cluster.storeIds[Math.floor(rng() * 3)]!;
      const report = await cluster.powerLoss(victim, rng);
      await work.ackMore(20, `${context}, store ${victim} down`);
      await cluster.startStore(victim);
      await work.ackMore(20, `${context}, store ${victim} restarted after ${JSON.stringify(report)}`);
    } finally {
      await work.stop();
    }
    await expectAllAcked(cluster, work.acked, context);
    for (const id of cluster.storeIds) {
      const last = [...work.acked.keys()].at(-1)!;
      await waitFor(async () => (await cluster!.engineGet(id, last)) !== undefined, {
        timeoutMs: 10_000,
        message: `${context}: store ${id} never caught up to ${last}`,
      });
    }
  });

  it("loses no acknowledged write when every store loses power at once", async () => {
    const seed = testSeed();
    const rng = seededRng(seed);
    const context = `seed ${seed} (replay with SEED=${seed})`;
    cluster = new TestCluster({ stores: 3, seed, disk: "sim" });
    await cluster.start();
    const work = new Workload(cluster, context);
    work.start();
    let acked: Map<string, string>;
    try {
      await work.ackMore(40, context);
      acked = new Map(work.acked);
      const reports = [];
      for (const id of cluster.storeIds)
        reports.push(...(await cluster.powerLoss(id, rng)).map((r) => ({ store: Number(id), ...r })));
      const lostSomething = reports.some((r) => r.lost > 0);
      for (const id of cluster.storeIds) await cluster.startStore(id);
      await work.ackMore(10, `${context}, after the outage (${lostSomething ? "some" : "no"} unsynced writes lost)`);
    } finally {
      await work.stop();
    }
    // Acknowledged before the outage began: they must all have survived it.
    await expectAllAcked(cluster, acked, context);
  });

  it("stops a store whose fsync fails, and it catches up once restarted on a sound disk", async () => {
    const seed = testSeed();
    const context = `seed ${seed} (replay with SEED=${seed})`;
    cluster = new TestCluster({ stores: 3, seed, disk: "sim" });
    await cluster.start();
    const work = new Workload(cluster, context);
    work.start();
    try {
      await work.ackMore(20, context);
      const victim = cluster.leaderOf(1n) ?? 1n;
      cluster.simDisk(victim)!.faults.failSync = (file) => file === "raft";
      await waitFor(() => cluster!.slots.get(victim)!.store?.stopped, {
        timeoutMs: 10_000,
        message: `${context}: store ${victim} kept running on a disk whose fsync fails`,
      });
      // The process would exit here; the harness takes the stopped store off the network.
      await cluster.stopStore(victim);
      await work.ackMore(20, `${context}, store ${victim} stopped`);
      cluster.simDisk(victim)!.faults.failSync = undefined;
      await cluster.startStore(victim);
      await work.ackMore(10, `${context}, store ${victim} restarted`);
    } finally {
      await work.stop();
    }
    await expectAllAcked(cluster, work.acked, context);
    const last = [...work.acked.keys()].at(-1)!;
    for (const id of cluster.storeIds) {
      await waitFor(async () => (await cluster!.engineGet(id, last)) !== undefined, {
        timeoutMs: 10_000,
        message: `${context}: store ${id} never caught up to ${last}`,
      });
    }
  });
});
