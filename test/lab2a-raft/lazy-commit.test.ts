// lazyCommitBroadcast: a leader's new commit index reaches followers that hold every entry with
// the next append or heartbeat, not in an empty append of its own; a membership change and
// commitBroadcast() still go out at once. Off (the default), every
// commit is sent at once, as etcd does.
import { describe, expect, it } from "vitest";
import type { Message, Ready } from "../../src/raft/testing.js";
import {
  ConfChange,
  ConfChangeType,
  MemoryStorage,
  MessageType,
  InspectableRawNode as RawNode,
} from "../../src/raft/testing.js";
import { msg } from "./harness.js";

function persistAndAdvance(rn: RawNode, s: MemoryStorage, rd: Ready): void {
  s.append(rd.entries);
  if (rd.hardState) s.setHardState(rd.hardState);
  rn.advance(rd);
}

/** Node 1 of {1, 2, 3}: leader of term 1 whose no-op (index 1) both followers hold and know committed. */
function settledLeader(lazy: boolean): { rn: RawNode; s: MemoryStorage } {
  const s = new MemoryStorage();
  const rn = new RawNode({
    id: 1n,
    peers: [1n, 2n, 3n],
    electionTick: 10,
    heartbeatTick: 1,
    storage: s,
    lazyCommitBroadcast: lazy,
  });
  rn.campaign();
  persistAndAdvance(rn, s, rn.ready());
  rn.step(msg({ msgType: MessageType.MsgRequestVoteResponse, from: 2n, to: 1n, term: 1n }));
  persistAndAdvance(rn, s, rn.ready());
  for (const from of [2n, 3n]) rn.step(ack(from, 1n));
  expect(rn.status().hardState.commit).toBe(1n);
  persistAndAdvance(rn, s, rn.ready());
  return { rn, s };
}

function ack(from: bigint, index: bigint): Message {
  return msg({ msgType: MessageType.MsgAppendResponse, from, to: 1n, term: 1n, index });
}

function commitAppends(rd: Ready): Message[] {
  return rd.messages.filter((m) => m.msgType === MessageType.MsgAppend && m.entries.length === 0);
}

/** Proposes one entry at index 2, persists it, and has both followers acknowledge it. */
function writeAndAck(rn: RawNode, s: MemoryStorage): Ready {
  rn.propose(Buffer.from("x"));
  persistAndAdvance(rn, s, rn.ready());
  for (const from of [2n, 3n]) rn.step(ack(from, 2n));
  return rn.ready();
}

describe("lazy commit broadcast", () => {
  it("off: a commit goes to every follower at once in an append without entries", () => {
    const { rn, s } = settledLeader(false);
    const rd = writeAndAck(rn, s);
    expect(rn.status().hardState.commit).toBe(2n);
    expect(commitAppends(rd).map((m) => [m.to, m.commit])).toEqual([
      [2n, 2n],
      [3n, 2n],
    ]);
  });

  it("on: no append without entries for caught-up followers; the next heartbeat carries the commit", () => {
    const { rn, s } = settledLeader(true);
    const rd = writeAndAck(rn, s);
    expect(rn.status().hardState.commit).toBe(2n);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([2n]);
    expect(commitAppends(rd), "nothing sent for the commit alone").toEqual([]);
    persistAndAdvance(rn, s, rd);
    rn.tick();
    const beats = rn.ready().messages.filter((m) => m.msgType === MessageType.MsgHeartbeat);
    expect(beats.map((m) => [m.to, m.commit])).toEqual([
      [2n, 2n],
      [3n, 2n],
    ]);
  });

  it("on: commitBroadcast() sends the commit at once", () => {
    const { rn, s } = settledLeader(true);
    persistAndAdvance(rn, s, writeAndAck(rn, s));
    rn.commitBroadcast();
    expect(commitAppends(rn.ready()).map((m) => [m.to, m.commit])).toEqual([
      [2n, 2n],
      [3n, 2n],
    ]);
  });

  it("on: a committed membership change is sent at once", () => {
    const { rn, s } = settledLeader(true);
    rn.proposeConfChange(ConfChange.fromPartial({ changeType: ConfChangeType.AddNode, nodeId: 4n }));
    persistAndAdvance(rn, s, rn.ready());
    for (const from of [2n, 3n]) rn.step(ack(from, 2n));
    const rd = rn.ready();
    expect(rn.status().hardState.commit).toBe(2n);
    expect(commitAppends(rd).map((m) => [m.to, m.commit])).toEqual([
      [2n, 2n],
      [3n, 2n],
    ]);
  });
});
