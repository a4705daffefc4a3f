// ReadIndex: linearizable reads confirmed by a heartbeat round instead of a log write.
import { describe, expect, it } from "vitest";
import { MemoryStorage, MessageType as MT } from "../../src/raft/testing.js";
import type { TestRaft as Raft } from "./harness.js";
import {
  StateType,
  ent,
  hup,
  ids,
  msg,
  newNetwork,
  newTestRaft,
  persistUnstable,
  prop,
  readMessages,
} from "./harness.js";

function read(id: bigint, ctx: string) {
  return msg({ msgType: MT.MsgReadIndex, from: id, to: id, context: Buffer.from(ctx) });
}

describe("ReadIndex", () => {
  it("TestReadOnlyOptionSafe: reads through the leader or a follower return the commit index", () => {
    const [a, b, c] = ids(3).map((id) => newTestRaft(id, ids(3), 10, 1)) as [Raft, Raft, Raft];
    const n = newNetwork(a, b, c);
    n.send(hup(1));
    expect(a.state).toBe(StateType.Leader);
    const cases: [Raft, number, bigint, string][] = [
      [a, 10, 11n, "ctx1"],
      [b, 10, 21n, "ctx2"],
      [c, 10, 31n, "ctx3"],
      [a, 10, 41n, "ctx4"],
      [b, 10, 51n, "ctx5"],
      [c, 10, 61n, "ctx6"],
    ];
    cases.forEach(([r, proposals, wri, wctx], i) => {
      for (let j = 0; j < proposals; j++) n.send(prop(1));
      n.send(read(r.id, wctx));
      expect(r.readStates.length, `case ${i}`).toBe(1);
      expect(r.readStates[0]!.index, `case ${i}`).toBe(wri);
      expect(r.readStates[0]!.requestCtx.toString(), `case ${i}`).toBe(wctx);
      r.readStates = [];
    });
  });

  it("TestReadOnlyForNewLeader: a new leader answers only after committing in its term", () => {
    const peers = ids(3).map((id) => {
      const s = new MemoryStorage();
      s.append([ent(1, 1), ent(2, 1)]);
      const commit = id === 1n ? 1n : 2n;
      s.setHardState({ term: 1n, vote: 0n, commit });
      return newTestRaft(id, ids(3), 10, 1, s, {}) as Raft;
    });
    const n = newNetwork(...peers);
    const a = peers[0]!;
    n.ignore(MT.MsgAppend); // a cannot commit its no-op
    n.send(hup(1));
    expect(a.state).toBe(StateType.Leader);
    n.send(read(1n, "ctx"));
    expect(a.readStates).toEqual([]); // postponed, not answered with a stale commit index
    n.recover();
    for (let i = 0; i < a.heartbeatTimeout; i++) a.tick();
    n.send(...readMessages(a));
    expect(a.raftLog.committed).toBe(3n);
    expect(a.readStates.map((rs) => [rs.index, rs.requestCtx.toString()])).toEqual([[3n, "ctx"]]);
    n.send(read(1n, "ctx2"));
    expect(a.readStates.length).toBe(2);
    expect(a.readStates[1]!.index).toBe(3n);
  });

  it("waits for a quorum of heartbeat acknowledgements", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    const a = n.raft(1);
    n.isolate(2);
    n.isolate(3);
    n.send(read(1n, "r1"));
    expect(a.readStates).toEqual([]);
    n.recover();
    n.send(msg({ msgType: MT.MsgHeartbeatResponse, from: 2n, to: 1n, term: a.term, context: Buffer.from("r1") }));
    expect(a.readStates.map((rs) => rs.requestCtx.toString())).toEqual(["r1"]);
  });

  it("one acknowledgement releases every earlier pending read", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    const a = n.raft(1);
    n.isolate(1);
    n.send(read(1n, "r1"));
    n.send(read(1n, "r2"));
    n.recover();
    n.send(msg({ msgType: MT.MsgHeartbeatResponse, from: 3n, to: 1n, term: a.term, context: Buffer.from("r2") }));
    expect(a.readStates.map((rs) => rs.requestCtx.toString())).toEqual(["r1", "r2"]);
  });

  it("a follower without a leader drops the request; a deposed leader forgets pending reads", () => {
    const f = newTestRaft(2n, ids(3), 10, 1);
    f.step(read(2n, "x"));
    expect(readMessages(f)).toEqual([]);
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    const a = n.raft(1);
    n.isolate(1);
    n.send(read(1n, "lost"));
    a.becomeFollower(a.term + 1n, 0n);
    n.recover();
    n.send(msg({ msgType: MT.MsgHeartbeatResponse, from: 2n, to: 1n, term: a.term, context: Buffer.from("lost") }));
    expect(a.readStates).toEqual([]);
  });
});

describe("ReadIndex requests held until the leader's first commit", () => {
  function leaderThatCannotCommit(): { a: Raft; n: ReturnType<typeof newNetwork> } {
    const peers = ids(2).map((id) => newTestRaft(id, ids(2), 10, 1) as Raft);
    const n = newNetwork(...peers);
    const a = peers[0]!;
    n.ignore(MT.MsgAppend); // a cannot commit its term's no-op
    n.send(hup(1));
    expect(a.state).toBe(StateType.Leader);
    n.send(read(1n, "held"));
    expect(a.readStates).toEqual([]);
    return { a, n };
  }

  it("are released when removing a peer lets the leader commit alone", () => {
    const { a } = leaderThatCannotCommit();
    a.removeNode(2n); // a one-member quorum commits the no-op at once
    expect(a.readStates.map((rs) => rs.requestCtx.toString())).toEqual(["held"]);
  });

  it("are released when a single-voter leader commits by persisting its entries", () => {
    const { a } = leaderThatCannotCommit();
    a.prs.delete(2n); // the membership shrank without a commit (as a conf change applied elsewhere)
    a.step(prop(1));
    persistUnstable(a); // commits the no-op and the proposal: the leader holds a quorum alone
    expect(a.readStates.map((rs) => rs.requestCtx.toString())).toEqual(["held"]);
  });

  it("are bounded: the oldest beyond the cap are dropped, not kept forever", () => {
    const { a, n } = leaderThatCannotCommit();
    for (let i = 0; i < 10_000; i++) n.send(read(1n, `r${i}`));
    expect(a.pendingReadIndexMessages.length).toBeLessThanOrEqual(1024);
  });
});
