// Snapshots: install, ignore, provide, catch up a slow node (course 2C), plus flow control.
import { describe, expect, it } from "vitest";
import type { Snapshot } from "../../src/raft/testing.js";
import {
  MemoryStorage,
  MessageType as MT,
  ProgressState,
  SnapshotStatus,
  InspectableRawNode as RawNode,
} from "../../src/raft/testing.js";
import { StateType, beat, ent, hup, msg, newNetwork, newTestRaft, nextEnts, prop, readMessages } from "./harness.js";

function snap(index: bigint, term: bigint, nodes: bigint[]): Snapshot {
  return { data: Buffer.alloc(0), metadata: { index, term, confState: { nodes } } };
}

describe("snapshots (2C)", () => {
  it("TestRestoreSnapshot2C", () => {
    const r = newTestRaft(1n, [1n, 2n], 10, 1);
    r.handleSnapshot(
      msg({ msgType: MT.MsgSnapshot, from: 2n, to: 1n, term: 11n, snapshot: snap(11n, 11n, [1n, 2n, 3n]) }),
    );
    expect(r.raftLog.lastIndex()).toBe(11n);
    expect(r.raftLog.term(11n)).toBe(11n);
    expect(r.nodes()).toEqual([1n, 2n, 3n]);
    expect(r.raftLog.pendingSnapshot?.metadata?.index).toBe(11n);
  });

  it("TestRestoreIgnoreSnapshot2C", () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
    s.setHardState({ term: 1n, vote: 0n, commit: 1n });
    const r = newTestRaft(1n, [1n, 2n], 10, 1, s);
    // A snapshot at the commit index is ignored.
    r.handleSnapshot(msg({ msgType: MT.MsgSnapshot, from: 2n, term: 1n, snapshot: snap(1n, 1n, [1n, 2n]) }));
    expect(r.raftLog.committed).toBe(1n);
    expect(r.raftLog.pendingSnapshot).toBeUndefined();
    // One our log already contains only fast-forwards the commit index.
    r.handleSnapshot(msg({ msgType: MT.MsgSnapshot, from: 2n, term: 1n, snapshot: snap(2n, 1n, [1n, 2n]) }));
    expect(r.raftLog.committed).toBe(2n);
    expect(r.raftLog.pendingSnapshot).toBeUndefined();
  });

  it("TestProvideSnap2C", () => {
    const s = new MemoryStorage();
    s.applySnapshot(snap(11n, 11n, [1n, 2n]));
    const r = newTestRaft(1n, [1n], 10, 1, s);
    r.becomeCandidate();
    r.becomeLeader();
    readMessages(r);
    // Node 2 needs entries below the first index: the leader must send a snapshot.
    const pr = r.prs.get(2n)!;
    pr.next = r.raftLog.firstIndex();
    r.step(msg({ msgType: MT.MsgAppendResponse, from: 2n, to: 1n, term: r.term, index: pr.next - 1n, reject: true }));
    const ms = readMessages(r);
    expect(ms.map((m) => m.msgType)).toEqual([MT.MsgSnapshot]);
    expect(ms[0]!.snapshot?.metadata?.index).toBe(11n);
    expect(pr.state).toBe(ProgressState.Snapshot);
  });

  it("TestRestoreFromSnapMsg2C", () => {
    const r = newTestRaft(2n, [1n, 2n], 10, 1);
    r.step(msg({ msgType: MT.MsgSnapshot, from: 1n, to: 2n, term: 2n, snapshot: snap(11n, 11n, [1n, 2n]) }));
    expect(r.lead).toBe(1n);
    expect(r.raftLog.committed).toBe(11n);
  });

  it("TestRestoreFromSnapWithOverlapingPeersMsg2C", () => {
    const r = newTestRaft(2n, [1n, 2n], 10, 1);
    r.handleSnapshot(msg({ msgType: MT.MsgSnapshot, from: 3n, term: 11n, snapshot: snap(11n, 11n, [2n, 3n, 4n]) }));
    expect(r.nodes()).toEqual([2n, 3n, 4n]);
  });

  it("TestSlowNodeRestore2C", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    n.isolate(3);
    for (let j = 0; j <= 100; j++) n.send(prop(1));
    const lead = n.raft(1);
    const ls = n.storage.get(1n)!;
    nextEnts(lead, ls);
    ls.createSnapshot(lead.raftLog.applied, lead.confState(), Buffer.alloc(0));
    ls.compact(lead.raftLog.applied);
    n.recover();
    n.send(beat(1)); // 3 answers; the leader finds it needs compacted entries and sends a snapshot
    const follower = n.raft(3);
    expect(follower.raftLog.pendingSnapshot?.metadata?.index).toBe(lead.raftLog.applied);
    n.send(prop(1));
    expect(follower.raftLog.committed).toBe(lead.raftLog.committed);
    expect(follower.raftLog.lastIndex()).toBe(lead.raftLog.lastIndex());
  });

  it("retries later when the snapshot is temporarily unavailable", () => {
    const n = newNetwork(null, null, null);
    n.send(hup(1));
    n.isolate(3);
    for (let j = 0; j < 10; j++) n.send(prop(1));
    const lead = n.raft(1);
    const ls = n.storage.get(1n)!;
    nextEnts(lead, ls);
    ls.createSnapshot(lead.raftLog.applied, lead.confState(), Buffer.alloc(0));
    ls.compact(lead.raftLog.applied);
    ls.snapshotUnavailable = true;
    n.recover();
    n.send(beat(1));
    expect(n.raft(3).raftLog.pendingSnapshot).toBeUndefined();
    expect(lead.prs.get(3n)!.state).toBe(ProgressState.Probe);
    ls.snapshotUnavailable = false;
    n.send(beat(1));
    expect(n.raft(3).raftLog.pendingSnapshot?.metadata?.index).toBe(lead.raftLog.applied);
    expect(n.raft(3).raftLog.committed).toBe(lead.raftLog.committed);
  });

  it("reportSnapshot moves the follower out of snapshot state (failure forgets the snapshot)", () => {
    for (const status of [SnapshotStatus.Finish, SnapshotStatus.Failure]) {
      const s = new MemoryStorage();
      s.applySnapshot(snap(11n, 11n, [1n, 2n]));
      const rn = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage: s });
      rn.raft.becomeCandidate();
      rn.raft.becomeLeader();
      const pr = rn.raft.prs.get(2n)!;
      pr.becomeSnapshot(11n);
      rn.reportSnapshot(2n, status);
      expect(pr.state).toBe(ProgressState.Probe);
      expect(pr.next).toBe(status === SnapshotStatus.Finish ? 12n : 1n);
      expect(pr.isPaused()).toBe(true);
    }
  });

  it("a follower with a pending snapshot does not campaign", () => {
    const r = newTestRaft(2n, [1n, 2n], 10, 1);
    r.handleSnapshot(msg({ msgType: MT.MsgSnapshot, from: 1n, term: 2n, snapshot: snap(11n, 11n, [1n, 2n]) }));
    for (let i = 0; i < 40; i++) r.tick();
    expect(r.state).toBe(StateType.Follower);
  });
});
