// The leader appends to followers while its own log write runs (Raft thesis 10.2.1), so it may
// count its own copy toward a commit only once the application reports that copy durable.
import { describe, expect, it } from "vitest";
import type { Message, Ready } from "../../src/raft/testing.js";
import {
  MemoryStorage,
  MessageType,
  InspectableRawNode as RawNode,
  StateType,
  sendableBeforePersist,
} from "../../src/raft/testing.js";
import { msg } from "./harness.js";

function persist(s: MemoryStorage, rd: Ready): void {
  s.append(rd.entries);
  if (rd.hardState) s.setHardState(rd.hardState);
}

/** Node 1 of {1, 2, 3}, leader of term 1 with its no-op (index 1) in a Ready not yet persisted. */
function leaderWithUnpersistedNoop(): { rn: RawNode; s: MemoryStorage; rd: Ready } {
  const s = new MemoryStorage();
  const rn = new RawNode({ id: 1n, peers: [1n, 2n, 3n], electionTick: 10, heartbeatTick: 1, storage: s });
  rn.campaign();
  const vote = rn.ready();
  persist(s, vote);
  rn.advance(vote);
  rn.step(msg({ msgType: MessageType.MsgRequestVoteResponse, from: 2n, to: 1n, term: 1n }));
  expect(rn.status().softState.raftState).toBe(StateType.Leader);
  return { rn, s, rd: rn.ready() };
}

function appendAck(from: bigint, index: bigint): Message {
  return msg({ msgType: MessageType.MsgAppendResponse, from, to: 1n, term: 1n, index });
}

describe("a leader's own log write runs alongside its appends", () => {
  it("does not count the leader's copy before its entries are persisted", () => {
    const { rn, s, rd } = leaderWithUnpersistedNoop();
    expect(rd.entries.map((e) => e.index)).toEqual([1n]);
    // Follower 2 has the no-op durably; the leader has not: one durable copy of three.
    rn.step(appendAck(2n, 1n));
    expect(rn.status().hardState.commit).toBe(0n);
    expect(rn.ready().committedEntries).toEqual([]);
    persist(s, rd);
    rn.persisted(rd);
    expect(rn.status().hardState.commit).toBe(1n);
    expect(rn.ready().committedEntries.map((e) => e.index)).toEqual([1n]);
  });

  it("commits on the leader's own persist when a follower answered first, and tells it", () => {
    const { rn, s, rd } = leaderWithUnpersistedNoop();
    rn.step(appendAck(3n, 1n));
    persist(s, rd);
    rn.persisted(rd);
    const next = rn.ready();
    expect(next.committedEntries.map((e) => e.index)).toEqual([1n]);
    // The new commit index goes out at once, not with the next write (2 is still probed: paused).
    const commits = next.messages
      .filter((m) => m.msgType === MessageType.MsgAppend && m.to === 3n)
      .map((m) => m.commit);
    expect(commits).toContain(1n);
  });

  it("lets only the leader's appends leave before the persist, and none in a Ready that changes term or vote", () => {
    const { rd } = leaderWithUnpersistedNoop();
    const appends = rd.messages.filter((m) => m.msgType === MessageType.MsgAppend);
    expect(appends.map((m) => m.to)).toEqual([2n, 3n]);
    expect(appends.every((m) => sendableBeforePersist(rd, m))).toBe(true);

    // A node that votes: the vote response promises a vote that must be on disk first.
    const s = new MemoryStorage();
    const voter = new RawNode({ id: 2n, peers: [1n, 2n, 3n], electionTick: 10, heartbeatTick: 1, storage: s });
    voter.step(msg({ msgType: MessageType.MsgRequestVote, from: 1n, to: 2n, term: 1n, index: 0n, logTerm: 0n }));
    const voted = voter.ready();
    expect(voted.messages.map((m) => m.msgType)).toEqual([MessageType.MsgRequestVoteResponse]);
    expect(voted.messages.some((m) => sendableBeforePersist(voted, m))).toBe(false);

    // A follower's append response waits for its persist too.
    persist(s, voted);
    voter.advance(voted);
    voter.step(appends[0]!);
    const appended = voter.ready();
    expect(appended.messages.map((m) => m.msgType)).toEqual([MessageType.MsgAppendResponse]);
    expect(appended.messages.some((m) => sendableBeforePersist(appended, m))).toBe(false);
  });

  it("hands out the commit its own persist made in the same turn, but not a Ready with something to persist", () => {
    const { rn, s, rd } = leaderWithUnpersistedNoop();
    rn.step(appendAck(2n, 1n));
    rn.propose(Buffer.from("x")); // new entries: the next Ready has something to persist
    expect(rn.readyWithoutPersist()).toBeUndefined();
    const withEntry = rn.ready();
    persist(s, rd);
    rn.persisted(rd);
    // The no-op committed on the leader's own persist: it applies now, no write first.
    const committed = rn.readyWithoutPersist();
    expect(committed?.entries).toEqual([]);
    expect(committed?.committedEntries.map((e) => e.index)).toEqual([1n]);
    expect(rn.readyWithoutPersist()).toBeUndefined(); // nothing left
    persist(s, withEntry);
    rn.advance(rd);
    rn.advance(withEntry);
    rn.advance(committed!);
  });
});
