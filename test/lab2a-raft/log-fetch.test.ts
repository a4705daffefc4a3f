// Entries the application keeps only on disk: raft skips the send while storage reads them
// (ErrLogTemporarilyUnavailable) and sends them once told they are in (onEntriesFetched).
import { describe, expect, it } from "vitest";
import type { Entry, Message } from "../../src/raft/testing.js";
import {
  ErrLogTemporarilyUnavailable,
  MemoryStorage,
  MessageType,
  InspectableRawNode as RawNode,
} from "../../src/raft/testing.js";
import { msg } from "./harness.js";

class DiskBackedStorage extends MemoryStorage {
  /** Entries below this index are on disk only until `fetched`. */
  memoryFrom = 0n;
  fetched = false;
  requests: Array<[bigint, bigint]> = [];

  override entries(lo: bigint, hi: bigint, maxSizeBytes?: number): Entry[] {
    if (lo < this.memoryFrom && !this.fetched) {
      this.requests.push([lo, hi]);
      throw new ErrLogTemporarilyUnavailable(lo, hi);
    }
    return super.entries(lo, hi, maxSizeBytes);
  }
}

/** Persists and acknowledges every Ready; returns the messages sent. */
function drain(rn: RawNode, s: MemoryStorage): Message[] {
  const out: Message[] = [];
  while (rn.hasReady()) {
    const rd = rn.ready();
    s.append(rd.entries);
    if (rd.hardState) s.setHardState(rd.hardState);
    out.push(...rd.messages);
    rn.advance(rd);
  }
  return out;
}

const appendsTo = (msgs: Message[], to: bigint) =>
  msgs.filter((m) => m.msgType === MessageType.MsgAppend && m.to === to);

describe("raft log entries fetched asynchronously", () => {
  it("a lagging follower gets nothing while storage fetches, then the fetched entries", () => {
    const s = new DiskBackedStorage();
    const rn = new RawNode({ id: 1n, peers: [1n, 2n, 3n], electionTick: 10, heartbeatTick: 1, storage: s });
    rn.campaign();
    drain(rn, s);
    rn.step(msg({ msgType: MessageType.MsgRequestVoteResponse, from: 2n, to: 1n, term: rn.raft.term }));
    drain(rn, s);
    for (let i = 0; i < 5; i++) rn.propose(Buffer.from(`v${i}`));
    drain(rn, s);
    const last = rn.raft.raftLog.lastIndex();
    rn.step(msg({ msgType: MessageType.MsgAppendResponse, from: 2n, to: 1n, term: rn.raft.term, index: last }));
    drain(rn, s);
    expect(rn.raft.raftLog.committed).toBe(last);

    // Store 3 comes back; everything it lacks is on disk only.
    s.memoryFrom = last + 1n;
    rn.step(msg({ msgType: MessageType.MsgHeartbeatResponse, from: 3n, to: 1n, term: rn.raft.term }));
    expect(appendsTo(drain(rn, s), 3n)).toEqual([]);
    expect(s.requests.length).toBeGreaterThan(0);
    expect(s.requests[0]![0]).toBeLessThanOrEqual(last);

    // Asking again while the fetch runs neither throws nor sends.
    rn.step(msg({ msgType: MessageType.MsgHeartbeatResponse, from: 3n, to: 1n, term: rn.raft.term }));
    expect(appendsTo(drain(rn, s), 3n)).toEqual([]);

    s.fetched = true;
    rn.onEntriesFetched();
    const sent = appendsTo(drain(rn, s), 3n);
    expect(sent).toHaveLength(1);
    const got = sent[0]!.entries;
    expect(got[0]!.index).toBe(sent[0]!.index + 1n);
    expect(got[got.length - 1]!.index).toBe(last);
    expect(got.map((e) => e.data.toString()).slice(-5)).toEqual(["v0", "v1", "v2", "v3", "v4"]);
    // Follower 2 is up to date: the wake-up sends it nothing new.
    expect(appendsTo(sent, 2n)).toEqual([]);
  });
});
