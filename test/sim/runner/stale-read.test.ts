// The deliberate bug read-without-read-index on a scripted schedule. A leader serving reads from
// its own state without a ReadIndex round is only wrong while it still believes it leads after
// the others elected a new leader and acknowledged a write; CheckQuorum closes that window after
// an election timeout, so seeded faults rarely hit it (0 of 30 pause seeds once balance-leader
// stopped its ping-pong of leader transfers). Here the old leader is paused (a stop-the-world GC)
// and cut off from its peers, the others elect a leader and acknowledge a newer value, and the
// old leader is asked for the key the moment it resumes. The linearizability checker must reject
// that history with the bug and accept the same schedule without it.
import { describe, expect, it } from "vitest";
import type { Context } from "../../../src/proto/kvrpcpb.js";
import { CF_DEFAULT } from "../../../src/kv/engine/index.js";
import { isolate } from "../../../src/kv/transport/filters.js";
import { rawKeyspace, RaftStorage } from "../../../src/kv/storage/index.js";
import type { DeliberateBug } from "../../../src/util/deliberate-bugs.js";
import { TestCluster } from "../../harness/cluster.js";
import type { RegisterOperation } from "../checkers/index.js";
import { checkLinearizable } from "../checkers/index.js";
import { SIM_RAFTSTORE_CONFIG } from "./config.js";
import { SimRuntime } from "./sim-runtime.js";

const KEY = Buffer.from("k");

async function runSchedule(bugs: ReadonlySet<DeliberateBug>): Promise<{ history: RegisterOperation[]; log: string[] }> {
  const runtime = new SimRuntime(11);
  const cluster = new TestCluster({
    stores: 3,
    disk: "sim",
    runtime,
    storeRuntime: (id) => runtime.nodeClock(`store${id}`),
    seed: 11,
    config: { ...SIM_RAFTSTORE_CONFIG, deliberateBugs: bugs },
  });
  const history: RegisterOperation[] = [];
  const log: string[] = [];
  const until = async (what: string, done: () => boolean, withinMs: number): Promise<void> => {
    await runtime.runUntil(runtime.elapsedMs + withinMs, done);
    if (!done()) throw new Error(`${what}: not within ${withinMs} simulated ms\n${log.join("\n")}\n${cluster.dump()}`);
    log.push(`${runtime.elapsedMs} ${what}`);
  };
  /** Runs one raw operation on `store` as an event of the simulation and records it in the history. */
  const operate = async (store: bigint, kind: "put" | "get", value?: string): Promise<void> => {
    // Each operation starts strictly after the previous one's answer, so the history orders them.
    await runtime.runUntil(runtime.elapsedMs + 1);
    const s = cluster.store(store)!;
    const ctx: Context = {
      regionId: 1n,
      regionEpoch: s.peers.get(1n)!.region.regionEpoch,
      peer: s.peerMeta(1n),
      term: 0n,
    };
    const storage = rawKeyspace(new RaftStorage(s));
    const op: RegisterOperation = {
      client: Number(store),
      kind,
      key: "k",
      call: runtime.elapsedMs,
      outcome: "unknown",
    };
    if (kind === "put") op.value = value!;
    history.push(op);
    let settled = false;
    const run = async (): Promise<void> => {
      if (kind === "put") {
        await storage.write(ctx, [{ kind: "put", cf: CF_DEFAULT, key: KEY, value: Buffer.from(value!) }]);
        return;
      }
      const reader = await storage.reader(ctx);
      try {
        op.value = (await reader.getCF(CF_DEFAULT, KEY))?.toString() ?? null;
      } finally {
        await reader.close();
      }
    };
    runtime.schedule(`${kind} at store ${store}`, 0, () => {
      run().then(
        () => {
          op.outcome = "ok";
          op.return = runtime.elapsedMs;
          settled = true;
        },
        (err: unknown) => {
          log.push(`${runtime.elapsedMs} ${kind} at store ${store} failed: ${(err as Error).message}`);
          settled = true;
        },
      );
    });
    await until(`${kind} ${value ?? ""} at store ${store} answered`, () => settled, 5_000);
  };

  let started = false;
  runtime.schedule("start", 0, () => void cluster.start().then(() => (started = true)));
  await until("cluster started", () => started, 5_000);
  await until("a first leader", () => cluster.leaderOf(1n) !== undefined, 5_000);
  const old = cluster.leaderOf(1n)!;
  await operate(old, "put", "v1");
  // A stop-the-world pause of the leader, off the network to its peers while it lasts.
  const clock = runtime.nodeClock(`store${old}`);
  clock.pause();
  cluster.network.addFilter(isolate(old));
  const newLeader = () => cluster.storeIds.find((id) => id !== old && cluster.store(id)?.peers.get(1n)?.isLeader());
  await until("a new leader among the others", () => newLeader() !== undefined, 10_000);
  await operate(newLeader()!, "put", "v2");
  // It resumes still believing it leads (its ticks were held); its peers' news has not reached it.
  clock.resume();
  await operate(old, "get");
  log.push(`the old leader read ${JSON.stringify(history.at(-1)?.value)}`);
  let down = false;
  runtime.schedule("shutdown", 0, () => void cluster.shutdown().finally(() => (down = true)));
  await until("shut down", () => down, 10_000);
  return { history, log };
}

describe("read-without-read-index", () => {
  it("is caught by the linearizability checker on a schedule that reads at a paused, deposed leader", async () => {
    const buggy = await runSchedule(new Set(["read-without-read-index"]));
    const verdict = checkLinearizable(buggy.history);
    expect(verdict.verdict, buggy.log.join("\n")).toBe("illegal");
    const sound = await runSchedule(new Set());
    expect(checkLinearizable(sound.history).verdict, sound.log.join("\n")).toBe("ok");
  }, 60_000);
});
