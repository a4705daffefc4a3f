// RawNode and Ready semantics (course 2AC, plus restart-from-snapshot of 2C).
import { describe, expect, it } from "vitest";
import type { Entry, Ready } from "../../src/raft/testing.js";
import {
  ConfChange,
  ConfChangeType,
  ErrProposalDropped,
  ErrStepLocalMsg,
  MemoryStorage,
  MessageType,
  InspectableRawNode as RawNode,
  StateType,
} from "../../src/raft/testing.js";
import { ent, msg } from "./harness.js";

function brief(es: Entry[]): string[] {
  return es.map((e) => `${e.index}/${e.term}/${e.data.toString()}`);
}

function newNode(storage: MemoryStorage, peers: bigint[] = [1n]): RawNode {
  return new RawNode({ id: 1n, peers, electionTick: 10, heartbeatTick: 1, storage });
}

/** The application's half of the contract: persist, then acknowledge. */
function persist(s: MemoryStorage, rd: Ready): void {
  if (rd.snapshot) s.applySnapshot(rd.snapshot);
  s.append(rd.entries);
  if (rd.hardState) s.setHardState(rd.hardState);
}

describe("RawNode (2AC)", () => {
  it("TestRawNodeStart2AC", () => {
    const s = new MemoryStorage();
    const rn = newNode(s);
    rn.campaign();
    let rd = rn.ready();
    expect(rd.softState).toEqual({ lead: 1n, raftState: StateType.Leader });
    // Even a one-member quorum commits an entry only once it is durable: in the next Ready.
    expect(rd.hardState).toEqual({ term: 1n, vote: 1n, commit: 0n });
    expect(brief(rd.entries)).toEqual(["1/1/"]);
    expect(brief(rd.committedEntries)).toEqual([]);
    expect(rd.mustSync).toBe(true);
    persist(s, rd);
    rn.advance(rd);
    rd = rn.ready();
    expect(rd.hardState).toEqual({ term: 1n, vote: 1n, commit: 1n });
    expect(brief(rd.committedEntries)).toEqual(["1/1/"]);
    persist(s, rd);
    rn.advance(rd);

    rn.propose(Buffer.from("foo"));
    rd = rn.ready();
    expect(rd.softState).toBeUndefined();
    expect(rd.hardState).toBeUndefined();
    expect(brief(rd.entries)).toEqual(["2/1/foo"]);
    expect(brief(rd.committedEntries)).toEqual([]);
    persist(s, rd);
    rn.advance(rd);
    rd = rn.ready();
    expect(rd.hardState).toEqual({ term: 1n, vote: 1n, commit: 2n });
    expect(brief(rd.committedEntries)).toEqual(["2/1/foo"]);
    persist(s, rd);
    rn.advance(rd);
    expect(rn.hasReady()).toBe(false);
  });

  it("TestRawNodeRestart2AC", () => {
    const s = new MemoryStorage();
    s.setHardState({ term: 1n, vote: 0n, commit: 1n });
    s.append([ent(1, 1), ent(2, 1, "foo")]);
    const rn = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage: s });
    const rd = rn.ready();
    // Nothing new to persist; only the committed entry to apply.
    expect(rd.hardState).toBeUndefined();
    expect(rd.softState).toBeUndefined();
    expect(rd.entries).toEqual([]);
    expect(brief(rd.committedEntries)).toEqual(["1/1/"]);
    expect(rd.messages).toEqual([]);
    rn.advance(rd);
    expect(rn.hasReady()).toBe(false);
  });

  it("TestRawNodeRestartFromSnapshot2C", () => {
    const s = new MemoryStorage();
    s.applySnapshot({ data: Buffer.alloc(0), metadata: { index: 2n, term: 1n, confState: { nodes: [1n, 2n] } } });
    s.setHardState({ term: 1n, vote: 0n, commit: 3n });
    s.append([ent(3, 1, "foo")]);
    const rn = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage: s });
    expect(rn.raft.nodes()).toEqual([1n, 2n]);
    const rd = rn.ready();
    expect(rd.hardState).toBeUndefined();
    expect(rd.entries).toEqual([]);
    expect(brief(rd.committedEntries)).toEqual(["3/1/foo"]);
    rn.advance(rd);
    expect(rn.hasReady()).toBe(false);
  });

  it("restarts with applied: committed entries up to applied are not handed out again", () => {
    const s = new MemoryStorage();
    s.setHardState({ term: 1n, vote: 0n, commit: 2n });
    s.append([ent(1, 1), ent(2, 1, "foo")]);
    const rn = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage: s, applied: 1n });
    const rd = rn.ready();
    expect(brief(rd.committedEntries)).toEqual(["2/1/foo"]);
  });

  it("rejects local message types in step", () => {
    const rn = newNode(new MemoryStorage());
    for (const t of [MessageType.MsgHup, MessageType.MsgBeat, MessageType.MsgPropose]) {
      expect(() => rn.step(msg({ msgType: t, from: 1n, to: 1n }))).toThrow(ErrStepLocalMsg);
    }
  });

  it("drops proposals on a follower with ErrProposalDropped", () => {
    const rn = newNode(new MemoryStorage(), [1n, 2n]);
    expect(() => rn.propose(Buffer.from("x"))).toThrow(ErrProposalDropped);
  });

  it("a second ready() before advance() does not repeat entries, and advance acknowledges each", () => {
    const s = new MemoryStorage();
    const rn = newNode(s);
    rn.campaign();
    const rd1 = rn.ready();
    rn.propose(Buffer.from("a")); // between ready() and advance()
    const rd2 = rn.ready();
    expect(brief(rd1.entries)).toEqual(["1/1/"]);
    expect(brief(rd2.entries)).toEqual(["2/1/a"]);
    expect(brief(rd2.committedEntries)).toEqual([]); // nothing is durable yet
    persist(s, rd1);
    rn.advance(rd1);
    persist(s, rd2);
    rn.advance(rd2);
    const rd3 = rn.ready();
    expect(brief(rd3.committedEntries)).toEqual(["1/1/", "2/1/a"]);
    rn.advance(rd3);
    expect(rn.hasReady()).toBe(false);
    expect(rn.raft.raftLog.stabled).toBe(2n);
    expect(rn.raft.raftLog.applied).toBe(2n);
    expect(rn.status().applied).toBe(2n);
  });

  it("propose returns the index and term of the new entry", () => {
    const s = new MemoryStorage();
    const rn = newNode(s);
    rn.campaign();
    const rd = rn.ready();
    persist(s, rd);
    rn.advance(rd);
    expect(rn.propose(Buffer.from("x"))).toEqual({ index: 2n, term: 1n });
    const cc = rn.proposeConfChange(ConfChange.create({ changeType: ConfChangeType.AddNode, nodeId: 2n }));
    expect(cc).toEqual({ index: 3n, term: 1n });
  });

  it("status reports progress of every member on the leader", () => {
    const s = new MemoryStorage();
    const rn = newNode(s);
    rn.campaign();
    expect(rn.status().progress.get(1n)).toMatchObject({ match: 0n, state: "replicate" }); // no-op not durable yet
    const rd = rn.ready();
    persist(s, rd);
    rn.persisted(rd);
    const st = rn.status();
    expect(st.softState.raftState).toBe(StateType.Leader);
    expect(st.progress.get(1n)).toEqual({ match: 1n, next: 2n, state: "replicate" });
  });

  it("readIndex on a single node answers at once with the commit index", () => {
    const s = new MemoryStorage();
    const rn = newNode(s);
    rn.campaign();
    const rd = rn.ready();
    persist(s, rd);
    rn.advance(rd);
    rn.readIndex(Buffer.from("ctx1"));
    const rd2 = rn.ready();
    expect(rd2.readStates).toEqual([{ index: 1n, requestCtx: Buffer.from("ctx1") }]);
  });
});
