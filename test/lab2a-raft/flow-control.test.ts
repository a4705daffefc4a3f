// Replication flow control: probe one message at a time, pipeline a bounded window, bound bytes
// per append, fast backtracking with reject hints.
import { describe, expect, it } from "vitest";
import { MemoryStorage, MessageType as MT, ProgressState } from "../../src/raft/testing.js";
import { commitNoopEntry, ent, ids, msg, newTestRaft, prop, readMessages } from "./harness.js";

function leader(opts = {}) {
  const s = new MemoryStorage();
  const r = newTestRaft(1n, ids(2), 10, 1, s, opts);
  r.becomeCandidate();
  r.becomeLeader();
  return { r, s };
}

describe("flow control", () => {
  it("probe state sends one append until the follower answers", () => {
    const { r } = leader();
    readMessages(r);
    r.step(prop(1));
    r.step(prop(1));
    r.step(prop(1));
    const ms = readMessages(r).filter((m) => m.msgType === MT.MsgAppend);
    expect(ms.length).toBe(1);
    expect(r.prs.get(2n)!.state).toBe(ProgressState.Probe);
    // A heartbeat response unpauses the probe.
    r.step(msg({ msgType: MT.MsgHeartbeatResponse, from: 2n, to: 1n, term: r.term }));
    expect(readMessages(r).filter((m) => m.msgType === MT.MsgAppend).length).toBe(1);
  });

  it("replicate state pipelines at most maxInflightMsgs appends", () => {
    const { r, s } = leader({ maxInflightMsgs: 3 });
    commitNoopEntry(r, s);
    expect(r.prs.get(2n)!.state).toBe(ProgressState.Replicate);
    for (let i = 0; i < 10; i++) r.step(prop(1, `d${i}`));
    const apps = readMessages(r).filter((m) => m.msgType === MT.MsgAppend);
    expect(apps.length).toBe(3);
    expect(r.prs.get(2n)!.isPaused()).toBe(true);
    // Acknowledging the first frees one slot and the leader sends everything that is pending.
    r.step(msg({ msgType: MT.MsgAppendResponse, from: 2n, to: 1n, term: r.term, index: apps[0]!.index + 1n }));
    const more = readMessages(r).filter((m) => m.msgType === MT.MsgAppend);
    expect(more.length).toBe(1);
    expect(more[0]!.entries.length).toBe(7);
  });

  it("bounds the bytes of entries per append (but always sends at least one)", () => {
    const { r, s } = leader({ maxSizePerMsg: 60 });
    commitNoopEntry(r, s);
    r.prs.get(2n)!.becomeProbe();
    for (let i = 0; i < 5; i++) r.step(prop(1, "0123456789"));
    const apps = readMessages(r).filter((m) => m.msgType === MT.MsgAppend);
    expect(apps.length).toBe(1);
    expect(apps[0]!.entries.length).toBe(1);
  });

  it("a rejection's hint lets the leader skip a whole conflicting term at once", () => {
    // Leader log: terms 1 1 1 4 4 4 4; follower: 1 1 1 2 2 2 2 2 2 (longer, divergent).
    const ls = new MemoryStorage();
    ls.append([1, 1, 1, 4, 4, 4, 4].map((t, i) => ent(i + 1, t)));
    ls.setHardState({ term: 4n, vote: 0n, commit: 0n });
    const lead = newTestRaft(1n, ids(2), 10, 1, ls);
    lead.becomeCandidate();
    lead.becomeLeader();
    const fs = new MemoryStorage();
    fs.append([1, 1, 1, 2, 2, 2, 2, 2, 2].map((t, i) => ent(i + 1, t)));
    fs.setHardState({ term: 4n, vote: 0n, commit: 0n });
    const f = newTestRaft(2n, ids(2), 10, 1, fs);
    let rounds = 0;
    readMessages(lead);
    lead.sendAppend(2n);
    let inFlight = readMessages(lead);
    while (inFlight.length > 0 && rounds < 10) {
      rounds++;
      for (const m of inFlight) f.step(m);
      for (const m of readMessages(f)) lead.step(m);
      inFlight = readMessages(lead).filter((m) => m.msgType === MT.MsgAppend);
      if (f.raftLog.lastIndex() === lead.raftLog.lastIndex() && f.raftLog.lastTerm() === lead.term) break;
    }
    expect(f.raftLog.allEntries().map((e) => e.term)).toEqual([1n, 1n, 1n, 4n, 4n, 4n, 4n, 5n]);
    expect(rounds).toBeLessThanOrEqual(3);
  });
});
