// PreVote and CheckQuorum (beyond TinyKV; etcd's rules).
import { describe, expect, it } from "vitest";
import { MemoryStorage, MessageType as MT } from "../../src/raft/testing.js";
import type { TestRaft as Raft } from "./harness.js";
import type { Options } from "./harness.js";
import {
  StateType,
  beat,
  blackHole as nop,
  entsWithConfig,
  hup,
  ids,
  msg,
  newNetworkWithConfig,
  newTestRaft,
  prop,
  readMessages,
} from "./harness.js";

const pv: Options = { preVote: true };
const cq: Options = { checkQuorum: true };

function threeWith(opts: Options): [Raft, Raft, Raft] {
  return ids(3).map((id) => newTestRaft(id, ids(3), 10, 1, new MemoryStorage(), opts)) as [Raft, Raft, Raft];
}

describe("PreVote", () => {
  it("TestLeaderElectionPreVote", () => {
    const cases = [
      { n: newNetworkWithConfig(pv, null, null, null), state: StateType.Leader, term: 1n },
      { n: newNetworkWithConfig(pv, null, null, nop), state: StateType.Leader, term: 1n },
      // Without a quorum the node stays a pre-candidate and never bumps its term.
      { n: newNetworkWithConfig(pv, null, nop, nop), state: StateType.PreCandidate, term: 0n },
      { n: newNetworkWithConfig(pv, null, nop, nop, null), state: StateType.PreCandidate, term: 0n },
      { n: newNetworkWithConfig(pv, null, nop, nop, null, null), state: StateType.Leader, term: 1n },
      {
        n: newNetworkWithConfig(pv, null, entsWithConfig(pv, 1), entsWithConfig(pv, 1), entsWithConfig(pv, 1, 1), null),
        state: StateType.Follower,
        term: 1n,
      },
    ];
    cases.forEach(({ n, state, term }, i) => {
      n.send(hup(1));
      expect(StateType[n.raft(1).state], `case ${i}`).toBe(StateType[state]);
      expect(n.raft(1).term, `case ${i}`).toBe(term);
    });
  });

  it("TestPreVoteFromAnyState: a pre-vote is granted without changing term, vote or state", () => {
    for (const st of [StateType.Follower, StateType.Candidate, StateType.PreCandidate, StateType.Leader]) {
      const r = newTestRaft(1n, ids(3), 10, 1, new MemoryStorage(), pv);
      r.term = 1n;
      if (st === StateType.Follower) r.becomeFollower(r.term, 3n);
      if (st === StateType.PreCandidate) r.becomePreCandidate();
      if (st === StateType.Candidate || st === StateType.Leader) r.becomeCandidate();
      if (st === StateType.Leader) r.becomeLeader();
      readMessages(r);
      const { term, vote } = r;
      r.step(msg({ msgType: MT.MsgRequestPreVote, from: 2n, to: 1n, term: term + 1n, logTerm: term + 1n, index: 42n }));
      const ms = readMessages(r);
      expect(
        ms.map((m) => [m.msgType, m.reject, m.term]),
        StateType[st],
      ).toEqual([[MT.MsgRequestPreVoteResponse, false, term + 1n]]);
      expect(r.state, StateType[st]).toBe(st);
      expect(r.term).toBe(term);
      expect(r.vote).toBe(vote);
    }
  });

  it("a partitioned node rejoining does not disrupt the leader", () => {
    const [a, b, c] = threeWith(pv);
    const n = newNetworkWithConfig(pv, a, b, c);
    n.send(hup(1));
    expect(a.state).toBe(StateType.Leader);
    n.isolate(3);
    n.send(prop(1));
    for (let i = 0; i < 100; i++) {
      c.tick();
      n.send(...readMessages(c)); // its pre-votes are dropped by the partition
    }
    expect(c.term).toBe(1n); // pre-votes never bump the term
    expect(StateType[c.state]).toBe("PreCandidate");
    n.recover();
    n.send(beat(1));
    expect(a.state).toBe(StateType.Leader);
    expect(a.term).toBe(1n);
    expect(c.state).toBe(StateType.Follower);
    expect(c.raftLog.committed).toBe(a.raftLog.committed);
  });

  it("a pre-candidate that wins its pre-vote campaigns for real and wins", () => {
    const [a, b, c] = threeWith(pv);
    const n = newNetworkWithConfig(pv, a, b, c);
    n.send(hup(1));
    n.isolate(1); // leader gone
    n.send(hup(2));
    expect(b.state).toBe(StateType.Leader);
    expect(b.term).toBe(2n);
  });

  it("rejects a pre-vote from a node with a stale log", () => {
    const [a, b, c] = threeWith(pv);
    const n = newNetworkWithConfig(pv, a, b, c);
    n.send(hup(1));
    n.isolate(3);
    n.send(prop(1));
    n.recover();
    n.ignore(MT.MsgAppend);
    n.ignore(MT.MsgHeartbeat);
    n.isolate(1);
    // 3 lacks the last entry: 2 refuses its pre-vote, so nobody's term moves.
    n.send(hup(3));
    expect(StateType[c.state]).not.toBe("Leader");
    expect(b.term).toBe(1n);
    expect(c.term).toBe(1n);
  });
});

describe("CheckQuorum", () => {
  it("TestLeaderStepdownWhenQuorumActive", () => {
    const r = newTestRaft(1n, ids(3), 5, 1, new MemoryStorage(), cq);
    r.becomeCandidate();
    r.becomeLeader();
    for (let i = 0; i < r.electionTimeout + 1; i++) {
      r.step(msg({ msgType: MT.MsgHeartbeatResponse, from: 2n, to: 1n, term: r.term }));
      r.tick();
    }
    expect(r.state).toBe(StateType.Leader);
  });

  it("TestLeaderStepdownWhenQuorumLost", () => {
    const r = newTestRaft(1n, ids(3), 5, 1, new MemoryStorage(), cq);
    r.becomeCandidate();
    r.becomeLeader();
    for (let i = 0; i < r.electionTimeout + 1; i++) r.tick();
    expect(r.state).toBe(StateType.Follower);
  });

  it("TestLeaderSupersedingWithCheckQuorum: followers in their lease ignore vote requests", () => {
    const [a, b, c] = threeWith(cq);
    const n = newNetworkWithConfig(cq, a, b, c);
    b.randomizedElectionTimeout = b.electionTimeout + 1;
    for (let i = 0; i < b.electionTimeout; i++) b.tick();
    n.send(hup(1));
    expect(a.state).toBe(StateType.Leader);
    expect(c.state).toBe(StateType.Follower);
    n.send(hup(3));
    // 2 heard from the leader recently: it ignores 3's request, so 3 cannot win.
    expect(c.state).toBe(StateType.Candidate);
    for (let i = 0; i < b.electionTimeout; i++) b.tick(); // 2's lease expires
    n.send(hup(3));
    expect(c.state).toBe(StateType.Leader);
  });

  it("TestFreeStuckCandidateWithCheckQuorum: a stuck candidate's higher term is adopted", () => {
    const [a, b, c] = threeWith(cq);
    const n = newNetworkWithConfig(cq, a, b, c);
    b.randomizedElectionTimeout = b.electionTimeout + 1;
    for (let i = 0; i < b.electionTimeout; i++) b.tick();
    n.send(hup(1));
    n.isolate(1);
    n.send(hup(3));
    expect(b.state).toBe(StateType.Follower);
    expect(c.state).toBe(StateType.Candidate);
    expect(c.term).toBe(b.term + 1n);
    n.send(hup(3)); // still stuck: 2 is in its lease
    expect(c.term).toBe(b.term + 2n);
    n.recover();
    // The leader's heartbeat reaches the stuck candidate; its answer has the higher term.
    n.send(msg({ msgType: MT.MsgHeartbeat, from: 1n, to: 3n, term: a.term }));
    expect(a.state).toBe(StateType.Follower);
    expect(c.term).toBe(a.term);
    n.send(hup(3));
    expect(c.state).toBe(StateType.Leader);
  });

  it("a leader partitioned in a minority steps down; the majority elects a new leader", () => {
    const [a, b, c] = threeWith(cq);
    const n = newNetworkWithConfig(cq, a, b, c);
    b.randomizedElectionTimeout = b.electionTimeout + 1;
    for (let i = 0; i < b.electionTimeout; i++) b.tick();
    n.send(hup(1));
    n.isolate(1);
    for (let i = 0; i < 2 * a.electionTimeout; i++) a.tick();
    expect(a.state).toBe(StateType.Follower);
    for (let i = 0; i < 3 * b.electionTimeout; i++) {
      b.tick();
      c.tick();
      n.send(...readMessages(b), ...readMessages(c));
    }
    expect([b.state, c.state]).toContain(StateType.Leader);
  });
});
