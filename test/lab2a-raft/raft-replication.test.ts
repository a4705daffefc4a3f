// Raft log replication in small networks (course 2AB, after raft_test.go).
import { describe, expect, it } from "vitest";
import type { Entry, Message } from "../../src/raft/testing.js";
import { MemoryStorage, MessageType as MT, ProgressState, Raft } from "../../src/raft/testing.js";
import {
  StateType,
  beat,
  blackHole as nop,
  ent,
  entryList,
  entsWithConfig,
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
  votedWithConfig,
} from "./harness.js";

const three = (): Raft[] => ids(3).map((id) => newTestRaft(id, ids(3), 10, 1));

describe("raft: replication (2AB)", () => {
  it("TestProgressLeader2AB", () => {
    // The leader's own match follows its durable log: each entry counts once persisted.
    const r = newTestRaft(1n, ids(2), 5, 1);
    r.becomeCandidate();
    r.becomeLeader();
    persistUnstable(r);
    for (let i = 0; i < 5; i++) {
      const pr = r.prs.get(1n)!;
      expect([pr.match, pr.next]).toEqual([BigInt(i + 1), BigInt(i + 2)]);
      r.step(prop(1, "foo"));
      persistUnstable(r);
    }
  });

  it("TestLeaderElectionOverwriteNewerLogs2AB", () => {
    // 1 and 2 have [t1@1]; 3 has [t2@1]; 4 and 5 voted for 3 at term 2 with empty logs.
    const n = newNetwork(
      entsWithConfig({}, 1),
      entsWithConfig({}, 1),
      entsWithConfig({}, 2),
      votedWithConfig({}, 3n, 2n),
      votedWithConfig({}, 3n, 2n),
    );
    n.send(hup(1)); // loses at term 2: 3 has a newer log, 4 and 5 already voted
    expect(n.raft(1).state).toBe(StateType.Follower);
    expect(n.raft(1).term).toBe(2n);
    n.send(hup(1)); // wins at term 3 and overwrites 3's newer but uncommitted entry
    expect(n.raft(1).state).toBe(StateType.Leader);
    expect(n.raft(1).term).toBe(3n);
    for (const id of ids(5)) expect(entryList(n.raft(id)), `peer ${id}`).toEqual(["1/1/", "2/3/"]);
  });

  it("TestLogReplication2AB", () => {
    const cases: { msgs: Message[]; wcommitted: bigint }[] = [
      { msgs: [prop(1, "somedata")], wcommitted: 2n },
      { msgs: [prop(1, "somedata"), hup(2), prop(2, "somedata")], wcommitted: 4n },
    ];
    cases.forEach(({ msgs, wcommitted }, i) => {
      const n = newNetwork(null, null, null);
      n.send(hup(1));
      for (const m of msgs) n.send(m);
      for (const id of ids(3)) {
        const r = n.raft(id);
        expect(r.raftLog.committed, `case ${i} peer ${id}`).toBe(wcommitted);
        const data = nextEnts(r, n.storage.get(id)!)
          .filter((e) => e.data.length > 0)
          .map((e) => e.data.toString());
        expect(data, `case ${i} peer ${id}`).toEqual(
          msgs.filter((m) => m.msgType === MT.MsgPropose).map(() => "somedata"),
        );
      }
    });
  });

  it("TestSingleNodeCommit2AB", () => {
    const n = newNetwork(null);
    n.send(hup(1));
    n.send(prop(1, "some data"));
    n.send(prop(1, "some data"));
    expect(n.raft(1).raftLog.committed).toBe(3n);
  });

  it("TestCommitWithoutNewTermEntry2AB", () => {
    const n = newNetwork(null, null, null, null, null);
    n.send(hup(1));
    n.cut(1, 3);
    n.cut(1, 4);
    n.cut(1, 5);
    n.send(prop(1));
    n.send(prop(1));
    expect(n.raft(1).raftLog.committed).toBe(1n);
    n.recover();
    // 2 has the entries; its no-op in the new term commits them too.
    n.send(hup(2));
    expect(n.raft(1).raftLog.committed).toBe(4n);
  });

  it("TestCommitWithHeartbeat2AB", () => {
    const n = newNetwork(null, null, null, null, null);
    n.send(hup(1));
    n.isolate(5);
    n.send(prop(1));
    n.send(prop(1));
    expect(n.raft(5).raftLog.committed).toBe(1n);
    n.recover();
    // The heartbeat response shows 5 is behind; the leader sends it the entries.
    n.send(beat(1));
    expect(n.raft(5).raftLog.committed).toBe(3n);
  });

  it("TestDuelingCandidates2AB", () => {
    const [a, b, c] = three() as [Raft, Raft, Raft];
    const n = newNetwork(a, b, c);
    n.cut(1, 3);
    n.send(hup(1));
    n.send(hup(3));
    expect(a.state).toBe(StateType.Leader);
    expect(c.state).toBe(StateType.Candidate);
    n.recover();
    // 3's higher term disrupts the leader but its log is too short to win.
    n.send(hup(3));
    for (const r of [a, b, c]) {
      expect(r.state, `peer ${r.id}`).toBe(StateType.Follower);
      expect(r.term, `peer ${r.id}`).toBe(2n);
    }
    expect(entryList(a)).toEqual(["1/1/"]);
    expect(a.raftLog.committed).toBe(1n);
    expect(ltoa(b)).toBe(ltoa(a));
    expect(entryList(c)).toEqual([]);
  });

  it("TestCandidateConcede2AB", () => {
    const n = newNetwork(null, null, null);
    n.isolate(1);
    n.send(hup(1));
    n.send(hup(3));
    n.recover();
    n.send(beat(3));
    n.send(prop(3, "force follower"));
    n.send(beat(3));
    expect(n.raft(1).state).toBe(StateType.Follower);
    expect(n.raft(1).term).toBe(1n);
    for (const id of ids(3)) {
      expect(n.raft(id).raftLog.committed).toBe(2n);
      expect(entryList(n.raft(id))).toEqual(["1/1/", "2/1/force follower"]);
    }
  });

  it("TestOldMessages2AB", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    n.send(hup(2));
    n.send(hup(1)); // 1 is leader at term 3
    // An old leader's append at term 2 is ignored.
    n.send(msg({ msgType: MT.MsgAppend, from: 2n, to: 1n, term: 2n, entries: [ent(3, 2)] }));
    n.send(prop(1, "somedata"));
    for (const id of ids(3)) {
      expect(n.raft(id).raftLog.committed).toBe(4n);
      expect(entryList(n.raft(id))).toEqual(["1/1/", "2/2/", "3/3/", "4/3/somedata"]);
    }
  });

  it("TestProposal2AB", () => {
    const cases = [
      { n: newNetwork(null, null, null), success: true },
      { n: newNetwork(null, null, nop), success: true },
      { n: newNetwork(null, nop, nop), success: false },
      { n: newNetwork(null, nop, nop, null), success: false },
      { n: newNetwork(null, nop, nop, null, null), success: true },
    ];
    cases.forEach(({ n, success }, i) => {
      n.send(hup(1));
      n.send(prop(1, "somedata"));
      for (const [id, p] of n.peers) {
        if (!(p instanceof Raft)) continue;
        expect(p.raftLog.committed, `case ${i} peer ${id}`).toBe(success ? 2n : 0n);
        expect(entryList(p), `case ${i} peer ${id}`).toEqual(success ? ["1/1/", "2/1/somedata"] : []);
      }
      expect(n.raft(1).term).toBe(1n);
    });
  });

  it("TestHandleMessageType_MsgAppend2AB", () => {
    const a = (term: bigint, logTerm: bigint, index: bigint, commit: bigint, entries: Entry[] = []): Message =>
      msg({ msgType: MT.MsgAppend, from: 2n, to: 1n, term, logTerm, index, commit, entries });
    const cases: [Message, bigint, bigint, boolean][] = [
      [a(2n, 3n, 2n, 3n), 2n, 0n, true], // previous log mismatch
      [a(2n, 3n, 3n, 3n), 2n, 0n, true], // previous log non-exist
      [a(2n, 1n, 1n, 1n), 2n, 1n, false],
      [a(2n, 0n, 0n, 1n, [ent(1, 2)]), 1n, 1n, false],
      [a(2n, 2n, 2n, 3n, [ent(3, 2), ent(4, 2)]), 4n, 3n, false],
      [a(2n, 2n, 2n, 4n, [ent(3, 2)]), 3n, 3n, false],
      [a(2n, 1n, 1n, 4n, [ent(2, 2)]), 2n, 2n, false],
      [a(1n, 1n, 1n, 3n), 2n, 1n, false], // commit up to the last new entry (1)
      [a(1n, 1n, 1n, 3n, [ent(2, 2)]), 2n, 2n, false],
      [a(2n, 2n, 2n, 3n), 2n, 2n, false],
      [a(2n, 2n, 2n, 4n), 2n, 2n, false], // commit up to the log's last index
    ];
    cases.forEach(([m, windex, wcommit, wreject], i) => {
      const s = new MemoryStorage();
      s.append([ent(1, 1), ent(2, 2)]);
      const r = newTestRaft(1n, [1n], 10, 1, s);
      r.becomeFollower(2n, 0n);
      r.handleAppendEntries(m);
      expect(r.raftLog.lastIndex(), `case ${i}`).toBe(windex);
      expect(r.raftLog.committed, `case ${i}`).toBe(wcommit);
      const ms = readMessages(r);
      expect(ms.length, `case ${i}`).toBe(1);
      expect(ms[0]!.reject, `case ${i}`).toBe(wreject);
    });
  });

  it("TestRecvMessageType_MsgRequestVote2AB", () => {
    const F = StateType.Follower;
    const cases: [StateType, bigint, bigint, bigint, boolean][] = [
      [F, 0n, 0n, 0n, true],
      [F, 0n, 1n, 0n, true],
      [F, 0n, 2n, 0n, true],
      [F, 0n, 3n, 0n, false],
      [F, 1n, 0n, 0n, true],
      [F, 1n, 1n, 0n, true],
      [F, 1n, 2n, 0n, true],
      [F, 1n, 3n, 0n, false],
      [F, 2n, 0n, 0n, true],
      [F, 2n, 1n, 0n, true],
      [F, 2n, 2n, 0n, false],
      [F, 2n, 3n, 0n, false],
      [F, 3n, 0n, 0n, true],
      [F, 3n, 1n, 0n, true],
      [F, 3n, 2n, 0n, false],
      [F, 3n, 3n, 0n, false],
      [F, 3n, 2n, 2n, false],
      [F, 3n, 2n, 1n, true],
      [StateType.Leader, 3n, 3n, 1n, true],
      [StateType.Candidate, 3n, 3n, 1n, true],
    ];
    cases.forEach(([state, index, logTerm, voteFor, wreject], i) => {
      const s = new MemoryStorage();
      s.append([ent(1, 2), ent(2, 2)]);
      const r = newTestRaft(1n, [1n], 10, 1, s);
      const term = logTerm > 2n ? logTerm : 2n;
      r.term = term;
      r.state = state;
      r.vote = voteFor;
      r.step(msg({ msgType: MT.MsgRequestVote, from: 2n, to: 1n, term, index, logTerm }));
      const ms = readMessages(r);
      expect(
        ms.map((m) => [m.msgType, m.reject]),
        `case ${i}`,
      ).toEqual([[MT.MsgRequestVoteResponse, wreject]]);
    });
  });

  it("TestAllServerStepdown2AB", () => {
    const cases: [StateType, bigint][] = [
      [StateType.Follower, 0n],
      [StateType.Candidate, 0n],
      [StateType.Leader, 1n],
    ];
    for (const [state, windex] of cases) {
      for (const mt of [MT.MsgRequestVote, MT.MsgAppend]) {
        const r = newTestRaft(1n, ids(3), 10, 1);
        if (state === StateType.Follower) r.becomeFollower(1n, 0n);
        else r.becomeCandidate();
        if (state === StateType.Leader) r.becomeLeader();
        r.step(msg({ msgType: mt, from: 2n, to: 1n, term: 3n, logTerm: 3n }));
        const what = `${StateType[state]} <- ${MT[mt]}`;
        expect(r.state, what).toBe(StateType.Follower);
        expect(r.term, what).toBe(3n);
        expect(r.raftLog.lastIndex(), what).toBe(windex);
        expect(BigInt(r.raftLog.allEntries().length), what).toBe(windex);
        expect(r.lead, what).toBe(mt === MT.MsgAppend ? 2n : 0n);
      }
    }
  });

  it("TestHeartbeatUpdateCommit2AB", () => {
    for (const [failCnt, successCnt] of [
      [1, 1],
      [1, 10],
      [5, 10],
    ] as const) {
      const n = newNetwork(null, null, null);
      const [r1, r2] = [n.raft(1), n.raft(2)];
      n.send(hup(1));
      n.isolate(1);
      for (let i = 0; i < failCnt; i++) n.send(prop(1)); // cannot commit: no quorum
      expect(r1.raftLog.committed).toBe(1n);
      n.send(hup(2));
      for (let i = 0; i < successCnt; i++) n.send(prop(2));
      // Heal, but let only heartbeats reach 1: it must not commit its stale entries.
      n.recover();
      n.ignore(MT.MsgAppend);
      n.send(beat(2));
      expect(r1.raftLog.committed, `${failCnt}/${successCnt}`).toBeLessThanOrEqual(1n);
      n.recover();
      n.send(beat(2));
      expect(ltoa(r1)).toBe(ltoa(r2));
      expect(r1.raftLog.committed).toBe(BigInt(2 + successCnt));
    }
  });

  it("TestLeaderIncreaseNext2AB", () => {
    const prev = [ent(1, 1), ent(2, 1), ent(3, 1)];
    // Replicate: the leader optimistically advances next past what it sent; probe: it waits.
    for (const [state, next, wnext] of [
      [ProgressState.Replicate, 2n, BigInt(prev.length + 1 + 1 + 1)],
      [ProgressState.Probe, 2n, 2n],
    ] as const) {
      const s = new MemoryStorage();
      s.append(prev);
      const r = newTestRaft(1n, ids(2), 10, 1, s);
      r.becomeCandidate();
      r.becomeLeader();
      const pr = r.prs.get(2n)!;
      if (state === ProgressState.Replicate) pr.becomeReplicate();
      pr.next = next;
      r.step(prop(1, "somedata"));
      expect(r.prs.get(2n)!.next, state).toBe(wnext);
    }
  });
});
