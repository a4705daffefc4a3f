// Membership changes one node at a time (course 3A, raft part).
import { describe, expect, it } from "vitest";
import type { Ready } from "../../src/raft/testing.js";
import {
  ConfChange,
  ConfChangeType,
  EntryType,
  ErrProposalDropped,
  MemoryStorage,
  MessageType as MT,
  InspectableRawNode as RawNode,
  StateType,
  newEntry,
} from "../../src/raft/testing.js";
import {
  commitNoopEntry,
  hup,
  msg,
  newNetwork,
  newTestRaft,
  nextEnts,
  prop,
  readMessages,
} from "../lab2a-raft/harness.js";

function ccEntry(changeType: ConfChangeType, nodeId: bigint) {
  const data = Buffer.from(ConfChange.encode(ConfChange.create({ changeType, nodeId })).finish());
  return newEntry({ entryType: EntryType.EntryConfChange, data });
}

function persistAndApply(rn: RawNode, s: MemoryStorage, rd: Ready): void {
  s.append(rd.entries);
  if (rd.hardState) s.setHardState(rd.hardState);
  for (const e of rd.committedEntries) {
    if (e.entryType === EntryType.EntryConfChange) rn.applyConfChange(ConfChange.decode(e.data));
  }
  rn.advance(rd);
}

describe("membership changes (3A)", () => {
  it("TestAddNode3A", () => {
    const r = newTestRaft(1n, [1n], 10, 1);
    r.addNode(2n);
    expect(r.nodes()).toEqual([1n, 2n]);
  });

  it("TestRemoveNode3A", () => {
    const r = newTestRaft(1n, [1n, 2n], 10, 1);
    r.removeNode(2n);
    expect(r.nodes()).toEqual([1n]);
    r.removeNode(1n);
    expect(r.nodes()).toEqual([]);
  });

  it("TestCommitAfterRemoveNode3A", () => {
    const s = new MemoryStorage();
    const r = newTestRaft(1n, [1n, 2n], 5, 1, s);
    r.becomeCandidate();
    r.becomeLeader();
    commitNoopEntry(r, s); // conf changes wait for an entry of the leader's term to commit
    r.step(msg({ msgType: MT.MsgPropose, entries: [ccEntry(ConfChangeType.RemoveNode, 2n)] }));
    expect(nextEnts(r, s)).toEqual([]); // nothing committed without node 2
    const ccIndex = r.raftLog.lastIndex();
    r.step(prop(1, "hello")); // another proposal while the conf change is pending
    r.step(msg({ msgType: MT.MsgAppendResponse, from: 2n, to: 1n, term: r.term, index: ccIndex }));
    const ents = nextEnts(r, s);
    expect(ents.map((e) => e.entryType)).toEqual([EntryType.EntryConfChange]);
    // Applying the removal lowers the quorum: the pending proposal commits.
    r.removeNode(2n);
    expect(nextEnts(r, s).map((e) => e.data.toString())).toEqual(["hello"]);
  });

  it("refuses a second conf change while one is pending (unapplied)", () => {
    const s = new MemoryStorage();
    const r = newTestRaft(1n, [1n, 2n], 5, 1, s);
    r.becomeCandidate();
    r.becomeLeader();
    commitNoopEntry(r, s);
    r.step(msg({ msgType: MT.MsgPropose, entries: [ccEntry(ConfChangeType.AddNode, 3n)] }));
    expect(() => r.step(msg({ msgType: MT.MsgPropose, entries: [ccEntry(ConfChangeType.AddNode, 4n)] }))).toThrow(
      ErrProposalDropped,
    );
    expect(r.pendingConfIndex).toBe(2n);
  });

  it("a new leader refuses conf changes until entries of the old term are applied", () => {
    const s = new MemoryStorage();
    s.append([{ entryType: EntryType.EntryConfChange, term: 1n, index: 1n, data: Buffer.alloc(0) }]);
    const r = newTestRaft(1n, [1n, 2n], 5, 1, s);
    r.becomeCandidate();
    r.becomeLeader();
    expect(r.pendingConfIndex).toBe(1n);
    expect(() => r.step(msg({ msgType: MT.MsgPropose, entries: [ccEntry(ConfChangeType.AddNode, 3n)] }))).toThrow(
      ErrProposalDropped,
    );
  });

  it("a new leader refuses conf changes until it committed an entry of its term", () => {
    const s = new MemoryStorage();
    const r = newTestRaft(1n, [1n, 2n], 5, 1, s);
    r.becomeCandidate();
    r.becomeLeader();
    expect(() => r.step(msg({ msgType: MT.MsgPropose, entries: [ccEntry(ConfChangeType.AddNode, 3n)] }))).toThrow(
      ErrProposalDropped,
    );
    commitNoopEntry(r, s);
    r.step(msg({ msgType: MT.MsgPropose, entries: [ccEntry(ConfChangeType.AddNode, 3n)] }));
    expect(r.pendingConfIndex).toBe(2n);
  });

  it("a leader removed from the configuration steps down and a removed node never campaigns", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    const lead = n.raft(1);
    lead.removeNode(1n);
    expect(lead.state).toBe(StateType.Follower);
    for (let i = 0; i < 100; i++) lead.tick();
    expect(readMessages(lead)).toEqual([]);
    expect(lead.state).toBe(StateType.Follower);
  });

  it("TestRawNodeProposeAndConfChange3A", () => {
    const s = new MemoryStorage();
    const rn = new RawNode({ id: 1n, peers: [1n], electionTick: 10, heartbeatTick: 1, storage: s });
    rn.campaign();
    let proposed = false;
    let ccdata = Buffer.alloc(0);
    for (let i = 0; i < 10 && s.lastIndex() < 3n; i++) {
      const rd = rn.ready();
      s.append(rd.entries);
      // A conf change waits for the leader's first commit in its term: its no-op, committed once
      // the leader's own copy is durable (the Ready after its append).
      if (!proposed && rn.isLeader() && rd.committedEntries.length > 0) {
        rn.propose(Buffer.from("somedata"));
        const cc = ConfChange.create({ changeType: ConfChangeType.AddNode, nodeId: 1n });
        ccdata = Buffer.from(ConfChange.encode(cc).finish());
        rn.proposeConfChange(cc);
        proposed = true;
      }
      rn.advance(rd);
    }
    const last = s.lastIndex();
    const ents = s.entries(last - 1n, last + 1n);
    expect(ents[0]!.data.toString()).toBe("somedata");
    expect(ents[1]!.entryType).toBe(EntryType.EntryConfChange);
    expect(ents[1]!.data.equals(ccdata)).toBe(true);
  });

  it("TestRawNodeProposeAddDuplicateNode3A", () => {
    const s = new MemoryStorage();
    const rn = new RawNode({ id: 1n, peers: [1n], electionTick: 10, heartbeatTick: 1, storage: s });
    rn.campaign();
    // Until quiet: each commit shows in the Ready after the persist that made it.
    const drain = (): void => {
      while (rn.hasReady()) persistAndApply(rn, s, rn.ready());
    };
    drain();
    expect(rn.isLeader()).toBe(true);
    const proposeAndApply = (cc: ConfChange): void => {
      rn.proposeConfChange(cc);
      drain();
    };
    const cc1 = ConfChange.create({ changeType: ConfChangeType.AddNode, nodeId: 1n });
    const cc2 = ConfChange.create({ changeType: ConfChangeType.AddNode, nodeId: 2n });
    proposeAndApply(cc1);
    proposeAndApply(cc1); // adding the same node again is harmless
    proposeAndApply(cc2);
    const last = s.lastIndex();
    const datas = s.entries(last - 2n, last + 1n).map((e) => ConfChange.decode(e.data).nodeId);
    expect(datas).toEqual([1n, 1n, 2n]);
    expect(rn.raft.nodes()).toEqual([1n, 2n]);
  });

  it("applyConfChange returns the new membership; a zero node id is a no-op", () => {
    const rn = new RawNode({ id: 1n, peers: [1n], electionTick: 10, heartbeatTick: 1, storage: new MemoryStorage() });
    expect(rn.applyConfChange(ConfChange.create({ changeType: ConfChangeType.AddNode, nodeId: 3n })).nodes).toEqual([
      1n,
      3n,
    ]);
    expect(rn.applyConfChange(ConfChange.create({ changeType: ConfChangeType.RemoveNode, nodeId: 0n })).nodes).toEqual([
      1n,
      3n,
    ]);
    expect(rn.applyConfChange(ConfChange.create({ changeType: ConfChangeType.RemoveNode, nodeId: 3n })).nodes).toEqual([
      1n,
    ]);
  });
});

describe("a leader that applies its own removal, without stepping down", () => {
  it("keeps leading the remaining members so they learn the commit, and accepts no proposals", () => {
    const peers = [1n, 2n].map((id) =>
      newTestRaft(id, [1n, 2n], 10, 1, new MemoryStorage(), { stepDownOnRemoval: false }),
    );
    const n = newNetwork(...peers);
    n.send(hup(1));
    const lead = n.raft(1);
    expect(lead.state).toBe(StateType.Leader);
    lead.removeNode(1n);
    expect(lead.state).toBe(StateType.Leader);
    expect(() => lead.step(msg({ msgType: MT.MsgPropose, entries: [{ data: Buffer.from("x") } as never] }))).toThrow(
      ErrProposalDropped,
    );
    for (let i = 0; i < lead.heartbeatTimeout; i++) lead.tick();
    const beats = readMessages(lead).filter((m) => m.msgType === MT.MsgHeartbeat);
    expect(beats.map((m) => m.to)).toEqual([2n]);
  });
});
