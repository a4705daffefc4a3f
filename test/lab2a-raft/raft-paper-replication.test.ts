// The Raft paper's replication and safety rules (§5.3, §5.4), one rule per test (course 2AB).
import { describe, expect, it } from "vitest";
import type { Entry, Message } from "../../src/raft/testing.js";
import { MemoryStorage } from "../../src/raft/testing.js";
import {
  MessageType,
  StateType,
  acceptAndReply,
  blackHole,
  commitNoopEntry,
  ent,
  hup,
  ids,
  ltoa,
  msg,
  newNetwork,
  newTestRaft,
  nextEnts,
  persistUnstable,
  prop,
  readMessages,
} from "./harness.js";

function sortByTo(ms: Message[]): Message[] {
  return [...ms].sort((a, b) => (a.to < b.to ? -1 : a.to > b.to ? 1 : 0));
}

function brief(es: Entry[]): string[] {
  return es.map((e) => `${e.index}/${e.term}/${e.data.toString()}`);
}

describe("raft paper: replication and safety (2AB)", () => {
  it("TestLeaderStartReplication2AB", () => {
    const s = new MemoryStorage();
    const r = newTestRaft(1n, ids(3), 10, 1, s);
    r.becomeCandidate();
    r.becomeLeader();
    commitNoopEntry(r, s);
    const li = r.raftLog.lastIndex();
    r.step(prop(1, "some data"));
    expect(r.raftLog.lastIndex()).toBe(li + 1n);
    expect(r.raftLog.committed).toBe(li);
    const ms = sortByTo(readMessages(r));
    expect(ms.map((m) => [m.to, m.msgType, m.index, m.logTerm, m.commit, brief(m.entries)])).toEqual([
      [2n, MessageType.MsgAppend, li, 1n, li, [`${li + 1n}/1/some data`]],
      [3n, MessageType.MsgAppend, li, 1n, li, [`${li + 1n}/1/some data`]],
    ]);
    expect(brief(r.raftLog.unstableEntries())).toEqual([`${li + 1n}/1/some data`]);
  });

  it("TestLeaderCommitEntry2AB", () => {
    const s = new MemoryStorage();
    const r = newTestRaft(1n, ids(3), 10, 1, s);
    r.becomeCandidate();
    r.becomeLeader();
    commitNoopEntry(r, s);
    const li = r.raftLog.lastIndex();
    r.step(prop(1, "some data"));
    for (const m of readMessages(r)) r.step(acceptAndReply(m));
    expect(r.raftLog.committed).toBe(li + 1n);
    expect(brief(nextEnts(r, s))).toEqual([`${li + 1n}/1/some data`]);
    const ms = sortByTo(readMessages(r));
    expect(ms.map((m) => [m.to, m.msgType, m.commit])).toEqual([
      [2n, MessageType.MsgAppend, li + 1n],
      [3n, MessageType.MsgAppend, li + 1n],
    ]);
  });

  it("TestLeaderAcknowledgeCommit2AB", () => {
    const cases: [number, bigint[], boolean][] = [
      [1, [], true],
      [3, [], false],
      [3, [2n], true],
      [3, [2n, 3n], true],
      [5, [], false],
      [5, [2n], false],
      [5, [2n, 3n], true],
      [5, [2n, 3n, 4n], true],
      [5, [2n, 3n, 4n, 5n], true],
    ];
    cases.forEach(([size, acceptors, wack], i) => {
      const s = new MemoryStorage();
      const r = newTestRaft(1n, ids(size), 10, 1, s);
      r.becomeCandidate();
      r.becomeLeader();
      commitNoopEntry(r, s);
      const li = r.raftLog.lastIndex();
      r.step(prop(1, "some data"));
      persistUnstable(r);
      for (const m of readMessages(r)) if (acceptors.includes(m.to)) r.step(acceptAndReply(m));
      expect(r.raftLog.committed > li, `case ${i}`).toBe(wack);
    });
  });

  it("TestLeaderCommitPrecedingEntries2AB", () => {
    const cases: Entry[][] = [[], [ent(1, 2)], [ent(1, 1), ent(2, 2)], [ent(1, 1)]];
    cases.forEach((tt, i) => {
      const s = new MemoryStorage();
      s.append(tt);
      s.setHardState({ term: 2n, vote: 0n, commit: 0n });
      const r = newTestRaft(1n, ids(3), 10, 1, s);
      r.becomeCandidate();
      r.becomeLeader();
      r.step(prop(1, "some data"));
      for (const m of readMessages(r)) r.step(acceptAndReply(m));
      const li = tt.length;
      const want = [...brief(tt), `${li + 1}/3/`, `${li + 2}/3/some data`];
      expect(brief(nextEnts(r, s)), `case ${i}`).toEqual(want);
    });
  });

  it("TestFollowerCommitEntry2AB", () => {
    const cases: [Entry[], bigint][] = [
      [[ent(1, 1, "some data")], 1n],
      [[ent(1, 1, "some data"), ent(2, 1, "some data2")], 2n],
      [[ent(1, 1, "some data2"), ent(2, 1, "some data")], 2n],
      [[ent(1, 1, "some data"), ent(2, 1, "some data2")], 1n],
    ];
    cases.forEach(([ents, commit], i) => {
      const s = new MemoryStorage();
      const r = newTestRaft(1n, ids(3), 10, 1, s);
      r.becomeFollower(1n, 2n);
      r.step(msg({ msgType: MessageType.MsgAppend, from: 2n, to: 1n, term: 1n, entries: ents, commit }));
      expect(r.raftLog.committed, `case ${i}`).toBe(commit);
      expect(brief(nextEnts(r, s)), `case ${i}`).toEqual(brief(ents.slice(0, Number(commit))));
    });
  });

  it("TestFollowerCheckMessageType_MsgAppend2AB", () => {
    const ents = [ent(1, 1), ent(2, 2)];
    const cases: [bigint, bigint, bigint, boolean][] = [
      [0n, 0n, 1n, false], // below the commit index: answered with the commit index
      [1n, 1n, 1n, false],
      [2n, 2n, 2n, false],
      [1n, 2n, 2n, true], // term mismatch at index 2
      [3n, 3n, 3n, true], // index beyond the log
    ];
    cases.forEach(([term, index, windex, wreject], i) => {
      const s = new MemoryStorage();
      s.append(ents);
      s.setHardState({ term: 0n, vote: 0n, commit: 1n });
      const r = newTestRaft(1n, ids(3), 10, 1, s);
      r.becomeFollower(2n, 2n);
      r.step(msg({ msgType: MessageType.MsgAppend, from: 2n, to: 1n, term: 2n, logTerm: term, index }));
      const ms = readMessages(r);
      expect(
        ms.map((m) => [m.msgType, m.term, m.index, m.reject]),
        `case ${i}`,
      ).toEqual([[MessageType.MsgAppendResponse, 2n, windex, wreject]]);
      if (wreject) expect(ms[0]!.rejectHint <= 2n, `case ${i} hint within the log`).toBe(true);
    });
  });

  it("TestFollowerAppendEntries2AB", () => {
    const cases: [bigint, bigint, Entry[], Entry[], Entry[]][] = [
      [2n, 2n, [ent(3, 3)], [ent(1, 1), ent(2, 2), ent(3, 3)], [ent(3, 3)]],
      [1n, 1n, [ent(2, 3), ent(3, 4)], [ent(1, 1), ent(2, 3), ent(3, 4)], [ent(2, 3), ent(3, 4)]],
      [0n, 0n, [ent(1, 1)], [ent(1, 1), ent(2, 2)], []],
      [0n, 0n, [ent(1, 3)], [ent(1, 3)], [ent(1, 3)]],
    ];
    cases.forEach(([index, term, ents, wents, wunstable], i) => {
      const s = new MemoryStorage();
      s.append([ent(1, 1), ent(2, 2)]);
      const r = newTestRaft(1n, ids(3), 10, 1, s);
      r.becomeFollower(2n, 2n);
      r.step(msg({ msgType: MessageType.MsgAppend, from: 2n, to: 1n, term: 2n, logTerm: term, index, entries: ents }));
      expect(brief(r.raftLog.allEntries()), `case ${i}`).toEqual(brief(wents));
      expect(brief(r.raftLog.unstableEntries()), `case ${i}`).toEqual(brief(wunstable));
    });
  });

  it("TestLeaderSyncFollowerLog2AB", () => {
    const t = (terms: number[]): Entry[] => terms.map((term, i) => ent(i + 1, term));
    const ents = t([1, 1, 1, 4, 4, 5, 5, 6, 6, 6]);
    const term = 8n;
    const followers = [
      t([1, 1, 1, 4, 4, 5, 5, 6, 6]),
      t([1, 1, 1, 4]),
      t([1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]),
      t([1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]),
      t([1, 1, 1, 4, 4, 4, 4]),
      t([1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]),
    ];
    followers.forEach((tt, i) => {
      const ls = new MemoryStorage();
      ls.append(ents);
      ls.setHardState({ term, vote: 0n, commit: BigInt(ents.length) });
      const lead = newTestRaft(1n, ids(3), 10, 1, ls);
      const fs = new MemoryStorage();
      fs.append(tt);
      fs.setHardState({ term: term - 1n, vote: 0n, commit: 0n });
      const follower = newTestRaft(2n, ids(3), 10, 1, fs);
      const n = newNetwork(lead, follower, blackHole);
      n.send(hup(1));
      // The black hole cannot vote; grant its vote by hand so the leader is elected.
      n.send(msg({ msgType: MessageType.MsgRequestVoteResponse, from: 3n, to: 1n, term: term + 1n }));
      n.send(prop(1));
      expect(lead.state, `case ${i}`).toBe(StateType.Leader);
      expect(ltoa(follower), `case ${i}`).toBe(ltoa(lead));
    });
  });

  it("TestVoteRequest2AB", () => {
    const cases: [Entry[], bigint][] = [
      [[ent(1, 1)], 2n],
      [[ent(1, 1), ent(2, 2)], 3n],
    ];
    for (const [ents, wterm] of cases) {
      const r = newTestRaft(1n, ids(3), 10, 1);
      r.step(
        msg({
          msgType: MessageType.MsgAppend,
          from: 2n,
          to: 1n,
          term: wterm - 1n,
          logTerm: 0n,
          index: 0n,
          entries: ents,
        }),
      );
      readMessages(r);
      for (let i = 1; i < r.electionTimeout * 2; i++) r.tick();
      const ms = sortByTo(readMessages(r));
      const last = ents[ents.length - 1]!;
      expect(ms.map((m) => [m.to, m.msgType, m.term, m.index, m.logTerm])).toEqual([
        [2n, MessageType.MsgRequestVote, wterm, last.index, last.term],
        [3n, MessageType.MsgRequestVote, wterm, last.index, last.term],
      ]);
    }
  });

  it("TestVoter2AB", () => {
    const cases: [Entry[], bigint, bigint, boolean][] = [
      [[ent(1, 1)], 1n, 1n, false], // same log
      [[ent(1, 1)], 1n, 2n, false],
      [[ent(1, 1), ent(2, 1)], 1n, 1n, true],
      [[ent(1, 1)], 2n, 1n, false], // candidate's last term is higher
      [[ent(1, 1)], 2n, 2n, false],
      [[ent(1, 1), ent(2, 1)], 2n, 1n, false],
      [[ent(1, 2)], 1n, 1n, true], // voter's last term is higher
      [[ent(1, 2)], 1n, 2n, true],
      [[ent(1, 2), ent(2, 1)], 1n, 1n, true],
    ];
    cases.forEach(([ents, logTerm, index, wreject], i) => {
      const s = new MemoryStorage();
      s.append(ents);
      const r = newTestRaft(1n, ids(2), 10, 1, s);
      r.step(msg({ msgType: MessageType.MsgRequestVote, from: 2n, to: 1n, term: 3n, logTerm, index }));
      const ms = readMessages(r);
      expect(
        ms.map((m) => [m.msgType, m.reject]),
        `case ${i}`,
      ).toEqual([[MessageType.MsgRequestVoteResponse, wreject]]);
    });
  });

  it("TestLeaderOnlyCommitsLogFromCurrentTerm2AB", () => {
    const cases: [bigint, bigint][] = [
      [1n, 0n], // previous-term entries are not committed by counting replicas
      [2n, 0n],
      [3n, 3n], // an entry of the current term commits, and everything before it
    ];
    cases.forEach(([index, wcommit], i) => {
      const s = new MemoryStorage();
      s.append([ent(1, 1), ent(2, 2)]);
      s.setHardState({ term: 2n, vote: 0n, commit: 0n });
      const r = newTestRaft(1n, ids(2), 10, 1, s);
      r.becomeCandidate();
      r.becomeLeader();
      readMessages(r);
      r.step(prop(1));
      persistUnstable(r);
      r.step(msg({ msgType: MessageType.MsgAppendResponse, from: 2n, to: 1n, term: r.term, index }));
      expect(r.raftLog.committed, `case ${i}`).toBe(wcommit);
    });
  });
});
