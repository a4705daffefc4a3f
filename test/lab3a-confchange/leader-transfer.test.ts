// Leader transfer: MsgTransferLeader / MsgTimeoutNow (course 3A, raft part).
import { describe, expect, it } from "vitest";
import type { Message, Raft } from "../../src/raft/testing.js";
import { ErrProposalDropped, MessageType as MT, StateType } from "../../src/raft/testing.js";
import { hup, msg, newNetwork, newNetworkWithConfig, newTestRaft, nextEnts, prop } from "../lab2a-raft/harness.js";

function transfer(to: bigint | number, via: bigint | number): Message {
  return msg({ msgType: MT.MsgTransferLeader, from: BigInt(to), to: BigInt(via) });
}

function expectTransferState(r: Raft, state: StateType, lead: bigint): void {
  expect(StateType[r.state]).toBe(StateType[state]);
  expect(r.lead).toBe(lead);
  expect(r.leadTransferee).toBe(0n);
}

describe("leader transfer (3A)", () => {
  it("TestLeaderTransferToUpToDateNode3A", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    const lead = n.raft(1);
    expect(lead.lead).toBe(1n);
    n.send(transfer(2, 1));
    expectTransferState(lead, StateType.Follower, 2n);
    n.send(prop(2));
    n.send(transfer(1, 2));
    expectTransferState(lead, StateType.Leader, 1n);
  });

  it("TestLeaderTransferToUpToDateNodeFromFollower3A", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    const lead = n.raft(1);
    n.send(transfer(2, 2)); // stepped on the follower, forwarded to the leader
    expectTransferState(lead, StateType.Follower, 2n);
    n.send(prop(2));
    n.send(transfer(1, 1));
    expectTransferState(lead, StateType.Leader, 1n);
  });

  it("transfers with CheckQuorum on: the MsgTimeoutNow campaign bypasses the leader lease", () => {
    const n = newNetworkWithConfig({ checkQuorum: true }, null, null, null);
    for (const id of [1, 2, 3]) n.raft(id).randomizedElectionTimeout = n.raft(id).electionTimeout + id;
    const f = n.raft(2);
    for (let i = 0; i < f.electionTimeout; i++) f.tick(); // 2 must be out of lease to vote for 1
    n.send(hup(1));
    const lead = n.raft(1);
    expect(lead.state).toBe(StateType.Leader);
    n.send(transfer(2, 1));
    expectTransferState(lead, StateType.Follower, 2n);
    n.send(prop(2));
    n.send(transfer(1, 2));
    expectTransferState(lead, StateType.Leader, 1n);
  });

  it("TestLeaderTransferToSlowFollower3A", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    n.isolate(3);
    n.send(prop(1));
    n.recover();
    const lead = n.raft(1);
    expect(lead.prs.get(3n)!.match).toBe(1n);
    n.send(transfer(3, 1)); // the leader catches 3 up first
    expectTransferState(lead, StateType.Follower, 3n);
  });

  it("TestLeaderTransferAfterSnapshot3A", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    n.isolate(3);
    n.send(prop(1));
    const lead = n.raft(1);
    const ls = n.storage.get(1n)!;
    nextEnts(lead, ls);
    ls.createSnapshot(lead.raftLog.applied, lead.confState(), Buffer.alloc(0));
    ls.compact(lead.raftLog.applied);
    n.recover();
    expect(lead.prs.get(3n)!.match).toBe(1n);
    // Hold back 3's acknowledgement until it has installed the snapshot.
    let held: Message | undefined;
    n.msgHook = (m) => {
      if (m.msgType !== MT.MsgAppendResponse || m.from !== 3n || m.reject) return true;
      held = m;
      return false;
    };
    n.send(transfer(3, 1));
    expect(lead.state).toBe(StateType.Leader);
    expect(held).toBeDefined();
    const follower = n.raft(3);
    const snap = follower.raftLog.pendingSnapshot!;
    n.storage.get(3n)!.applySnapshot(snap);
    follower.raftLog.stableSnapTo(snap.metadata!.index);
    follower.raftLog.appliedTo(snap.metadata!.index);
    n.msgHook = undefined;
    n.send(held!);
    expectTransferState(lead, StateType.Follower, 3n);
  });

  it("TestLeaderTransferToSelf3A", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    n.send(transfer(1, 1));
    expectTransferState(n.raft(1), StateType.Leader, 1n);
  });

  it("TestLeaderTransferToNonExistingNode3A", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    n.send(transfer(4, 1));
    expectTransferState(n.raft(1), StateType.Leader, 1n);
  });

  it("aborts a transfer that does not finish within an election timeout", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    n.isolate(3);
    const lead = n.raft(1);
    n.send(transfer(3, 1));
    expect(lead.leadTransferee).toBe(3n);
    for (let i = 0; i < lead.heartbeatTimeout; i++) lead.tick();
    expect(lead.leadTransferee).toBe(3n);
    for (let i = 0; i < lead.electionTimeout - lead.heartbeatTimeout; i++) lead.tick();
    expectTransferState(lead, StateType.Leader, 1n);
  });

  it("drops proposals while a transfer is pending", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    n.isolate(3);
    const lead = n.raft(1);
    n.send(transfer(3, 1));
    expect(() => lead.step(prop(1))).toThrow(ErrProposalDropped);
    expect(lead.prs.get(1n)!.match).toBe(1n);
  });

  it("TestLeaderTransferReceiveHigherTermVote3A", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    n.isolate(3);
    const lead = n.raft(1);
    n.send(transfer(3, 1));
    expect(lead.leadTransferee).toBe(3n);
    n.send(hup(2)); // 2 wins at a higher term; the pending transfer is abandoned
    expectTransferState(lead, StateType.Follower, 2n);
  });

  it("TestLeaderTransferRemoveNode3A", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    n.ignore(MT.MsgTimeoutNow);
    const lead = n.raft(1);
    n.send(transfer(3, 1));
    expect(lead.leadTransferee).toBe(3n);
    lead.removeNode(3n);
    expectTransferState(lead, StateType.Leader, 1n);
  });

  it("TestLeaderTransferBack3A", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    n.isolate(3);
    const lead = n.raft(1);
    n.send(transfer(3, 1));
    expect(lead.leadTransferee).toBe(3n);
    n.send(transfer(1, 1)); // back to self: cancels
    expectTransferState(lead, StateType.Leader, 1n);
  });

  it("TestLeaderTransferSecondTransferToAnotherNode3A", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    n.isolate(3);
    const lead = n.raft(1);
    n.send(transfer(3, 1));
    expect(lead.leadTransferee).toBe(3n);
    n.send(transfer(2, 1)); // overrides the pending transfer
    expectTransferState(lead, StateType.Follower, 2n);
  });

  it("a second transfer to the same node does not extend the timeout", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    n.isolate(3);
    const lead = n.raft(1);
    n.send(transfer(3, 1));
    for (let i = 0; i < lead.heartbeatTimeout; i++) lead.tick();
    n.send(transfer(3, 1));
    for (let i = 0; i < lead.electionTimeout - lead.heartbeatTimeout; i++) lead.tick();
    expectTransferState(lead, StateType.Leader, 1n);
  });

  it("TestTransferNonMember3A", () => {
    const r = newTestRaft(1n, [2n, 3n, 4n], 5, 1);
    r.step(msg({ msgType: MT.MsgTimeoutNow, from: 2n, to: 1n }));
    r.step(msg({ msgType: MT.MsgRequestVoteResponse, from: 2n, to: 1n }));
    r.step(msg({ msgType: MT.MsgRequestVoteResponse, from: 3n, to: 1n }));
    expect(r.state).toBe(StateType.Follower);
  });
});
