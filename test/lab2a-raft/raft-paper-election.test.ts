// The Raft paper's election rules (§5.1, §5.2), one rule per test (course 2AA).
import { describe, expect, it } from "vitest";
import type { Raft } from "../../src/raft/testing.js";
import { MemoryStorage } from "../../src/raft/testing.js";
import { MessageType, StateType, hup, ids, msg, newTestRaft, readMessages } from "./harness.js";

function updateTermFromMessage(state: StateType): void {
  const r = newTestRaft(1n, ids(3), 10, 1);
  if (state === StateType.Candidate) r.becomeCandidate();
  if (state === StateType.Leader) {
    r.becomeCandidate();
    r.becomeLeader();
  }
  r.step(msg({ msgType: MessageType.MsgAppend, from: 2n, to: 1n, term: 2n }));
  expect(r.term).toBe(2n);
  expect(r.state).toBe(StateType.Follower);
}

function sortByTo<T extends { to: bigint }>(ms: T[]): T[] {
  return [...ms].sort((a, b) => (a.to < b.to ? -1 : a.to > b.to ? 1 : 0));
}

describe("raft paper: elections (2AA)", () => {
  it("TestFollowerUpdateTermFromMessage2AA", () => updateTermFromMessage(StateType.Follower));
  it("TestCandidateUpdateTermFromMessage2AA", () => updateTermFromMessage(StateType.Candidate));
  it("TestLeaderUpdateTermFromMessage2AA", () => updateTermFromMessage(StateType.Leader));

  it("TestStartAsFollower2AA", () => {
    const r = newTestRaft(1n, ids(3), 10, 1);
    expect(r.state).toBe(StateType.Follower);
    expect(r.term).toBe(0n);
  });

  it("TestLeaderBcastBeat2AA", () => {
    const hi = 1;
    const r = newTestRaft(1n, ids(3), 10, hi);
    r.becomeCandidate();
    r.becomeLeader();
    for (let i = 0; i < 10; i++)
      r.step(
        msg({
          msgType: MessageType.MsgPropose,
          entries: [{ entryType: 0, term: 0n, index: 0n, data: Buffer.from(`${i}`) }],
        }),
      );
    readMessages(r);
    for (let i = 0; i < hi; i++) r.tick();
    const ms = sortByTo(readMessages(r));
    expect(ms.map((m) => [m.from, m.to, m.term, m.msgType, m.commit, m.entries.length])).toEqual([
      [1n, 2n, 1n, MessageType.MsgHeartbeat, 0n, 0],
      [1n, 3n, 1n, MessageType.MsgHeartbeat, 0n, 0],
    ]);
  });

  for (const [name, state] of [
    ["TestFollowerStartElection2AA", StateType.Follower],
    ["TestCandidateStartNewElection2AA", StateType.Candidate],
  ] as const) {
    it(name, () => {
      const et = 10;
      const r = newTestRaft(1n, ids(3), et, 1);
      if (state === StateType.Candidate) r.becomeCandidate();
      else r.becomeFollower(1n, 2n);
      for (let i = 1; i < 2 * et; i++) r.tick();
      expect(r.term).toBe(2n);
      expect(r.state).toBe(StateType.Candidate);
      expect(r.votes.get(r.id)).toBe(true);
      const ms = sortByTo(readMessages(r));
      expect(ms.map((m) => [m.from, m.to, m.term, m.msgType])).toEqual([
        [1n, 2n, 2n, MessageType.MsgRequestVote],
        [1n, 3n, 2n, MessageType.MsgRequestVote],
      ]);
    });
  }

  it("TestLeaderElectionInOneRoundRPC2AA", () => {
    const cases: [number, Record<number, boolean>, StateType][] = [
      [1, {}, StateType.Leader],
      [3, { 2: true, 3: true }, StateType.Leader],
      [3, { 2: true }, StateType.Leader],
      [5, { 2: true, 3: true, 4: true, 5: true }, StateType.Leader],
      [5, { 2: true, 3: true, 4: true }, StateType.Leader],
      [5, { 2: true, 3: true }, StateType.Leader],
      [3, { 2: false, 3: false }, StateType.Follower],
      [5, { 2: false, 3: false, 4: false, 5: false }, StateType.Follower],
      [5, { 2: true, 3: false, 4: false, 5: false }, StateType.Follower],
      [3, {}, StateType.Candidate],
      [5, { 2: true }, StateType.Candidate],
      [5, { 2: false, 3: false }, StateType.Candidate],
      [5, {}, StateType.Candidate],
    ];
    cases.forEach(([size, votes, state], i) => {
      const r = newTestRaft(1n, ids(size), 10, 1);
      r.step(hup(1));
      for (const [id, vote] of Object.entries(votes)) {
        r.step(
          msg({ msgType: MessageType.MsgRequestVoteResponse, from: BigInt(id), to: 1n, term: r.term, reject: !vote }),
        );
      }
      expect(r.state, `case ${i}`).toBe(state);
      expect(r.term, `case ${i}`).toBe(1n);
    });
  });

  it("TestFollowerVote2AA", () => {
    const cases: [bigint, bigint, boolean][] = [
      [0n, 1n, false],
      [0n, 2n, false],
      [1n, 1n, false],
      [2n, 2n, false],
      [1n, 2n, true],
      [2n, 1n, true],
    ];
    cases.forEach(([vote, nvote, reject], i) => {
      const r = newTestRaft(1n, ids(3), 10, 1);
      r.term = 1n;
      r.vote = vote;
      r.step(msg({ msgType: MessageType.MsgRequestVote, from: nvote, to: 1n, term: 1n }));
      const ms = readMessages(r);
      expect(
        ms.map((m) => [m.from, m.to, m.term, m.msgType, m.reject]),
        `case ${i}`,
      ).toEqual([[1n, nvote, 1n, MessageType.MsgRequestVoteResponse, reject]]);
    });
  });

  it("TestCandidateFallback2AA", () => {
    for (const term of [1n, 2n]) {
      const r = newTestRaft(1n, ids(3), 10, 1);
      r.step(hup(1));
      expect(r.state).toBe(StateType.Candidate);
      r.step(msg({ msgType: MessageType.MsgAppend, from: 2n, to: 1n, term }));
      expect(r.state).toBe(StateType.Follower);
      expect(r.term).toBe(term);
    }
  });

  function timeoutRandomized(state: StateType): void {
    const et = 10;
    const r = newTestRaft(1n, ids(3), et, 1);
    const seen = new Set<number>();
    for (let round = 0; round < 50 * et; round++) {
      if (state === StateType.Follower) r.becomeFollower(r.term + 1n, 2n);
      else r.becomeCandidate();
      let time = 0;
      while (readMessages(r).length === 0) {
        r.tick();
        time++;
      }
      seen.add(time);
    }
    for (let d = et + 1; d < 2 * et; d++) expect(seen.has(d), `timeout ${d} observed`).toBe(true);
  }

  it("TestFollowerElectionTimeoutRandomized2AA", () => timeoutRandomized(StateType.Follower));
  it("TestCandidateElectionTimeoutRandomized2AA", () => timeoutRandomized(StateType.Candidate));

  function timeoutNonconflict(state: StateType): void {
    const et = 10;
    const size = 5;
    const rs: Raft[] = ids(size).map((id) => newTestRaft(id, ids(size), et, 1, new MemoryStorage()));
    let conflicts = 0;
    for (let round = 0; round < 1000; round++) {
      for (const r of rs) {
        if (state === StateType.Follower) r.becomeFollower(r.term + 1n, 0n);
        else r.becomeCandidate();
      }
      let timeouts = 0;
      while (timeouts === 0) {
        for (const r of rs) {
          r.tick();
          if (readMessages(r).length > 0) timeouts++;
        }
      }
      if (timeouts > 1) conflicts++;
    }
    expect(conflicts / 1000).toBeLessThanOrEqual(0.3);
  }

  it("TestFollowersElectionTimeoutNonconflict2AA", () => timeoutNonconflict(StateType.Follower));
  it("TestCandidatesElectionTimeoutNonconflict2AA", () => timeoutNonconflict(StateType.Candidate));
});
