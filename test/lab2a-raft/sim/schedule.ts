// One randomized schedule of the Raft simulation (driven by simulation.test.ts; importable by a
// debugging script to replay a seed with extra logging).
import { ConfChangeType, StateType, seededRandom } from "../../../src/raft/testing.js";
import type { SimNode, SimOptions } from "./cluster.js";
import { SimCluster } from "./cluster.js";

const HEAL_ROUNDS = 300;

function leaderOf(c: SimCluster): SimNode | undefined {
  let best: SimNode | undefined;
  for (const n of c.alive()) {
    const r = n.rn!.raft;
    if (r.state === StateType.Leader && (!best || r.term > best.rn!.raft.term)) best = n;
  }
  return best;
}

function randomSchedule(c: SimCluster, steps: number): void {
  let proposals = 0;
  for (let step = 0; step < steps; step++) {
    const x = c.rand();
    const node = c.pick(c.alive());
    if (x < 0.35) {
      if (node) c.tick(node);
    } else if (x < 0.75) {
      c.deliverOne();
    } else if (x < 0.85) {
      const target = c.rand() < 0.7 ? (leaderOf(c) ?? node) : node;
      if (target) c.propose(target, `p${proposals++}`);
    } else if (x < 0.87) {
      proposeConfChange(c);
    } else if (x < 0.89) {
      const groups = new Map<bigint, number>();
      for (const id of c.nodes.keys()) groups.set(id, Math.floor(c.rand() * 2));
      c.groups = groups;
    } else if (x < 0.91) {
      c.groups = undefined;
    } else if (x < 0.92) {
      // Crash the leader half of the time: leader changes with partly replicated logs are
      // where commitment rules matter.
      const victim = c.rand() < 0.5 ? (leaderOf(c) ?? node) : node;
      if (victim) c.crash(victim);
    } else if (x < 0.94) {
      const down = [...c.nodes.values()].filter((n) => !n.alive && !n.destroyed);
      const n = c.pick(down);
      if (n) c.restart(n);
    } else if (x < 0.96) {
      if (node) c.compact(node);
    } else if (x < 0.97) {
      const lead = leaderOf(c);
      const to = c.pick(c.members());
      if (lead && to !== undefined) c.transferLeader(lead, to);
    } else if (node) {
      c.readIndex(node);
    }
  }
}

function proposeConfChange(c: SimCluster): void {
  const lead = leaderOf(c);
  if (!lead) return;
  const members = lead.rn!.raft.nodes();
  if (members.length > 3 && c.rand() < 0.5) {
    c.proposeConfChange(lead, ConfChangeType.RemoveNode, c.pick(members)!);
  } else if (members.length < c.opts.nodes + 1) {
    c.proposeConfChange(lead, ConfChangeType.AddNode, c.nextId++);
  }
}

/** Heals everything and requires a new proposal to be applied by every member within a bound. */
function healAndCheckProgress(c: SimCluster): void {
  c.groups = undefined;
  c.dropRate = 0;
  c.dupRate = 0;
  c.crashInReadyRate = 0;
  c.deferApplyRate = 0;
  for (const n of c.nodes.values()) {
    n.storage.snapshotUnavailable = false;
    c.restart(n);
  }
  let proposed = -1;
  for (let round = 0; round < HEAL_ROUNDS; round++) {
    for (const n of c.alive()) c.tick(n);
    for (let i = 0; c.queue.length > 0 && i < 100_000; i++) c.deliverOne(true);
    const members = c.members();
    const done = members.length > 0 && members.every((id) => c.nodes.get(id)?.appliedFinal ?? false);
    if (done) return;
    const lead = leaderOf(c);
    if (lead && (proposed < 0 || round - proposed >= 20)) {
      c.propose(lead, `final-${round}`);
      proposed = round;
    }
  }
  const states = [...c.nodes.values()].map((n) =>
    n.destroyed
      ? `${n.id}:destroyed`
      : `${n.id}:${n.rn ? StateType[n.rn.raft.state] : "down"}@${n.rn?.raft.term}/applied ${n.appliedIndex}/members ${n.rn?.raft.nodes()}`,
  );
  throw new Error(
    `liveness: no proposal applied by all members ${c.members()} within ${HEAL_ROUNDS} rounds after healing [${states.join(", ")}]`,
  );
}

export function runSchedule(seed: number, trace?: (line: string) => void): void {
  const rand = seededRandom(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const opts: SimOptions = {
    nodes: rand() < 0.5 ? 3 : 5,
    preVote: rand() < 0.5,
    checkQuorum: rand() < 0.5,
    codec: rand() < 0.1,
    electionTick: 10,
    heartbeatTick: pick([1, 2, 3]),
    maxInflight: pick([1, 4, 256]),
    maxSizePerMsg: pick([16, 256, 1024 * 1024]),
  };
  const c = new SimCluster(rand, opts, seed);
  c.trace = trace;
  trace?.(JSON.stringify(opts));
  c.dropRate = pick([0, 0.05, 0.2]);
  c.dupRate = pick([0, 0.02]);
  c.crashInReadyRate = pick([0, 0, 0.002]);
  c.deferApplyRate = pick([0, 0.3, 0.7]);
  randomSchedule(c, 1000 + Math.floor(rand() * 2000));
  healAndCheckProgress(c);
}
