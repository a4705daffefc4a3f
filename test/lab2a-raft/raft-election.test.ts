// Raft elections in small networks (course 2AA, after raft_test.go).
import { describe, expect, it } from "vitest";
import { MemoryStorage, MessageType as MT } from "../../src/raft/testing.js";
import type { TestRaft as Raft } from "./harness.js";
import {
  StateType,
  beat,
  blackHole as nop,
  entsWithConfig,
  hup,
  ids,
  msg,
  newNetwork,
  newTestRaft,
  readMessages,
} from "./harness.js";

const three = (): Raft[] => ids(3).map((id) => newTestRaft(id, ids(3), 10, 1));

describe("raft: elections (2AA)", () => {
  it("TestLeaderElection2AA", () => {
    const cases = [
      { n: newNetwork(null, null, null), state: StateType.Leader, term: 1n },
      { n: newNetwork(null, null, nop), state: StateType.Leader, term: 1n },
      { n: newNetwork(null, nop, nop), state: StateType.Candidate, term: 1n },
      { n: newNetwork(null, nop, nop, null), state: StateType.Candidate, term: 1n },
      { n: newNetwork(null, nop, nop, null, null), state: StateType.Leader, term: 1n },
      // Logs further along in the same term: rejections come back instead of being ignored.
      {
        n: newNetwork(null, entsWithConfig({}, 1), entsWithConfig({}, 1), entsWithConfig({}, 1, 1), null),
        state: StateType.Follower,
        term: 1n,
      },
    ];
    cases.forEach(({ n, state, term }, i) => {
      n.send(hup(1));
      expect(n.raft(1).state, `case ${i}`).toBe(state);
      expect(n.raft(1).term, `case ${i}`).toBe(term);
    });
  });

  it("TestLeaderCycle2AA", () => {
    const n = newNetwork(null, null, null);
    for (const campaigner of [1n, 2n, 3n]) {
      n.send(hup(campaigner));
      for (const id of ids(3)) {
        expect(n.raft(id).state, `campaigner ${campaigner}, peer ${id}`).toBe(
          id === campaigner ? StateType.Leader : StateType.Follower,
        );
      }
    }
  });

  it("TestVoteFromAnyState2AA", () => {
    for (const st of [StateType.Follower, StateType.Candidate, StateType.Leader]) {
      const r = newTestRaft(1n, ids(3), 10, 1);
      r.term = 1n;
      if (st === StateType.Follower) r.becomeFollower(r.term, 3n);
      if (st !== StateType.Follower) r.becomeCandidate();
      if (st === StateType.Leader) r.becomeLeader();
      readMessages(r);
      const newTerm = r.term + 1n;
      r.step(msg({ msgType: MT.MsgRequestVote, from: 2n, to: 1n, term: newTerm, logTerm: newTerm, index: 42n }));
      const ms = readMessages(r);
      expect(ms.map((m) => [m.msgType, m.reject])).toEqual([[MT.MsgRequestVoteResponse, false]]);
      expect(r.state).toBe(StateType.Follower);
      expect(r.term).toBe(newTerm);
      expect(r.vote).toBe(2n);
    }
  });

  it("TestSingleNodeCandidate2AA", () => {
    const n = newNetwork(null);
    n.send(hup(1));
    expect(n.raft(1).state).toBe(StateType.Leader);
  });

  it("TestCandidateResetTermMessageType_MsgHeartbeat2AA", () => candidateResetTerm(MT.MsgHeartbeat));
  it("TestCandidateResetTermMessageType_MsgAppend2AA", () => candidateResetTerm(MT.MsgAppend));

  it("TestDisruptiveFollower2AA", () => {
    const [n1, n2, n3] = ids(3).map((id) =>
      newTestRaft(id, ids(3), 10, 1, new MemoryStorage(), { checkQuorum: true }),
    ) as [Raft, Raft, Raft];
    for (const r of [n1, n2, n3]) r.becomeFollower(1n, 0n);
    const n = newNetwork(n1, n2, n3);
    n.send(hup(1));
    expect([n1.state, n2.state, n3.state]).toEqual([StateType.Leader, StateType.Follower, StateType.Follower]);
    // The leader's messages to n3 are late while n3's ticks elapse: n3 campaigns.
    n3.randomizedElectionTimeout = n3.electionTimeout + 2;
    for (let i = 0; i < n3.randomizedElectionTimeout; i++) n3.tick();
    expect([n1.state, n2.state, n3.state]).toEqual([StateType.Leader, StateType.Follower, StateType.Candidate]);
    expect([n1.term, n2.term, n3.term]).toEqual([2n, 2n, 3n]);
    // The delayed heartbeat (lower term) arrives at the candidate; its answer carries term 3 and
    // makes the leader step down, freeing the cluster for an election at the higher term.
    n.send(msg({ msgType: MT.MsgHeartbeat, from: 1n, to: 3n, term: n1.term }));
    expect([n1.state, n2.state, n3.state]).toEqual([StateType.Follower, StateType.Follower, StateType.Candidate]);
    expect([n1.term, n2.term, n3.term]).toEqual([3n, 2n, 3n]);
  });

  it("TestRecvMessageType_MsgBeat2AA", () => {
    for (const [st, wmsgs] of [
      [StateType.Leader, 2],
      [StateType.Candidate, 0],
      [StateType.Follower, 0],
    ] as const) {
      const r = newTestRaft(1n, ids(3), 10, 1);
      if (st !== StateType.Follower) r.becomeCandidate();
      if (st === StateType.Leader) r.becomeLeader();
      readMessages(r);
      r.step(beat(1));
      const ms = readMessages(r);
      expect(ms.length, StateType[st]).toBe(wmsgs);
      for (const m of ms) expect(m.msgType).toBe(MT.MsgHeartbeat);
    }
  });

  it("TestCampaignWhileLeader2AA", () => {
    const r = newTestRaft(1n, [1n], 5, 1);
    r.step(hup(1));
    expect(r.state).toBe(StateType.Leader);
    const term = r.term;
    r.step(hup(1));
    expect(r.state).toBe(StateType.Leader);
    expect(r.term).toBe(term);
  });

  it("TestSplitVote2AA", () => {
    const rs = three();
    for (const r of rs) r.becomeFollower(1n, 0n);
    const n = newNetwork(...rs);
    n.send(hup(1));
    n.isolate(1); // the leader goes down; the followers split the vote
    n.send(hup(2), hup(3));
    expect([rs[1]!.term, rs[2]!.term]).toEqual([3n, 3n]);
    expect([rs[1]!.state, rs[2]!.state]).toEqual([StateType.Candidate, StateType.Candidate]);
    n.send(hup(2)); // node 2 times out first
    expect([rs[1]!.term, rs[2]!.term]).toEqual([4n, 4n]);
    expect([rs[1]!.state, rs[2]!.state]).toEqual([StateType.Leader, StateType.Follower]);
  });
});

function candidateResetTerm(mt: MT): void {
  const [a, b, c] = three() as [Raft, Raft, Raft];
  const n = newNetwork(a, b, c);
  n.send(hup(1));
  expect([a.state, b.state, c.state]).toEqual([StateType.Leader, StateType.Follower, StateType.Follower]);
  n.isolate(3);
  n.send(hup(2));
  n.send(hup(1));
  expect([a.state, b.state]).toEqual([StateType.Leader, StateType.Follower]);
  c.resetRandomizedElectionTimeout();
  for (let i = 0; i < c.randomizedElectionTimeout; i++) c.tick();
  expect(c.state).toBe(StateType.Candidate);
  n.recover();
  n.send(msg({ msgType: mt, from: 1n, to: 3n, term: a.term }));
  expect(c.state).toBe(StateType.Follower);
  expect(c.term).toBe(a.term);
}
