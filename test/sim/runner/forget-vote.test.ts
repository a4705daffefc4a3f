// The fourth deliberate bug, forget-vote-on-restart, on a scripted schedule: with PreVote and
// the log up-to-date rule a forgotten vote only matters when the voter restarts after granting
// it and before the new leader's first append reaches it, a window seeded faults essentially
// never hit (0 of 39 seeds of crash/isolate/pause mixes failed). The schedule makes that
// window wide; the election-safety checker must then see two leaders of one term, and the same
// schedule without the bug must not.
import { describe, expect, it } from "vitest";
import { MessageType } from "../../../src/raft/eraftpb.js";
import { isolate } from "../../../src/kv/transport/filters.js";
import type { DeliberateBug } from "../../../src/util/deliberate-bugs.js";
import { TestCluster } from "../../harness/cluster.js";
import { RaftInvariantChecker } from "../checkers/index.js";
import { SimRuntime } from "./sim-runtime.js";

const VOTES = new Set([
  MessageType.MsgRequestVote,
  MessageType.MsgRequestVoteResponse,
  MessageType.MsgRequestPreVote,
  MessageType.MsgRequestPreVoteResponse,
]);

async function runSchedule(bugs: ReadonlySet<DeliberateBug>): Promise<{ violations: string[]; log: string[] }> {
  const runtime = new SimRuntime(7);
  const cluster = new TestCluster({ stores: 3, disk: "sim", runtime, seed: 7, config: { deliberateBugs: bugs } });
  const raft = new RaftInvariantChecker();
  const log: string[] = [];
  const watch = (): void => {
    for (const id of cluster.storeIds) {
      const peer = cluster.store(id)?.peers.get(1n);
      if (peer?.isLeader())
        raft.observe({ type: "leader", region: 1, term: Number(peer.term), store: Number(id), at: runtime.elapsedMs });
    }
  };
  const until = async (what: string, done: () => boolean, withinMs: number): Promise<void> => {
    const deadline = runtime.elapsedMs + withinMs;
    await runtime.runUntil(deadline, done);
    if (!done()) throw new Error(`${what}: not within ${withinMs} simulated ms\n${cluster.dump()}`);
    log.push(`${runtime.elapsedMs} ${what}`);
  };
  let started = false;
  runtime.schedule("start", 0, () => void cluster.start().then(() => (started = true)));
  await until("cluster started", () => started, 5_000);
  runtime.setInterval(watch, 5);
  await until("a first leader", () => cluster.leaderOf(1n) !== undefined, 5_000);
  const old = cluster.leaderOf(1n)!;
  const [x, y] = cluster.storeIds.filter((id) => id !== old) as [bigint, bigint];
  // The old leader is cut off; between the other two only votes pass, so the winner's appends
  // never reach the voter.
  const removeIsolation = cluster.network.addFilter(isolate(old));
  cluster.network.addFilter((env) => !(env.from !== old && env.to !== old) || VOTES.has(env.msg.message!.msgType));
  await until(
    "a new leader among the other two",
    () => [x, y].some((id) => cluster.store(id)?.peers.get(1n)?.isLeader()),
    5_000,
  );
  const winner = cluster.store(x)!.peers.get(1n)!.isLeader() ? x : y;
  const voter = winner === x ? y : x;
  let restarted = false;
  runtime.schedule(
    "restart the voter",
    0,
    () =>
      void cluster
        .stopStore(voter)
        .then(() => cluster.startStore(voter))
        .then(() => (restarted = true)),
  );
  await until(`store ${voter} (voted for ${winner}) restarted`, () => restarted, 5_000);
  // The old leader comes back and the winner is cut off instead: the voter is the old leader's
  // only possible second vote, in the term it already gave its vote in.
  cluster.network.addFilter(isolate(winner));
  removeIsolation();
  await runtime.runUntil(runtime.elapsedMs + 3_000);
  let down = false;
  runtime.schedule("shutdown", 0, () => void cluster.shutdown().finally(() => (down = true)));
  await until("shut down", () => down, 10_000);
  return { violations: raft.violations.map((v) => v.message), log };
}

describe("forget-vote-on-restart", () => {
  it("is caught by the election-safety checker on a schedule that restarts a voter before the new leader's first append", async () => {
    const buggy = await runSchedule(new Set(["forget-vote-on-restart"]));
    expect(buggy.violations.join("\n"), buggy.log.join("\n")).toMatch(/has two leaders/);
    const sound = await runSchedule(new Set());
    expect(sound.violations, sound.log.join("\n")).toEqual([]);
  }, 60_000);
});
