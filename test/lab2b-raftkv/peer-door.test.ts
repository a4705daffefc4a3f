/**
 * One peer, no store, no disk: what its door (`Peer.handle`) does with each request, and the
 * policy a request gets. The cluster tests check the same paths end to end.
 */
import { describe, expect, it } from "vitest";
import { ConfChangeType } from "../../src/raft/index.js";
import type { Region } from "../../src/proto/metapb.js";
import type { RaftCmdResponse } from "../../src/proto/raft_cmdpb.js";
import { AdminCmdType, CmdType, RaftCmdRequest } from "../../src/proto/raft_cmdpb.js";
import { RaftApplyState, RaftLocalState } from "../../src/proto/raft_serverpb.js";
import type { ReadOutcome } from "../../src/kv/raftstore/index.js";
import { inspectRequest, Peer, PeerStorage, TEST_RAFTSTORE_CONFIG } from "../../src/kv/raftstore/index.js";
import { Proposals } from "../../src/kv/raftstore/proposals.js";
import { WriteBatch } from "../../src/kv/engine/engine.js";
import { silentLogger } from "../../src/util/logger.js";
import { realRuntime } from "../../src/util/runtime.js";

const REGION: Region = {
  id: 1n,
  startKey: Buffer.alloc(0),
  endKey: Buffer.alloc(0),
  regionEpoch: { confVer: 1n, version: 1n },
  peers: [{ id: 1n, storeId: 1n }],
};

function newPeer(): { peer: Peer; wakes: () => number } {
  let wakes = 0;
  const storage = new PeerStorage(
    REGION,
    RaftLocalState.create({ hardState: { term: 5n, vote: 0n, commit: 5n }, lastIndex: 5n, lastTerm: 5n }),
    RaftApplyState.create({ appliedIndex: 5n, truncatedState: { index: 5n, term: 5n } }),
    [],
  );
  const peer = new Peer(1n, REGION.peers[0]!, storage, {
    config: TEST_RAFTSTORE_CONFIG,
    runtime: realRuntime,
    log: silentLogger,
    wake: () => wakes++,
  });
  return { peer, wakes: () => wakes };
}

/** Persists (into a batch nobody writes) and advances every Ready the peer has, as the store loop would. */
function settle(peer: Peer): void {
  const nowhere = new WriteBatch({
    put: () => undefined,
    del: () => undefined,
    write: async () => undefined,
    close: async () => undefined,
  });
  while (peer.hasReady()) {
    const rd = peer.ready();
    peer.persist(nowhere, rd);
    peer.advance(rd);
  }
}

/** A single-voter region's peer leads as soon as it campaigns. */
function newLeader(): { peer: Peer; wakes: () => number } {
  const p = newPeer();
  p.peer.handle({ type: "campaign" });
  settle(p.peer);
  expect(p.peer.isLeader(), "the only voter leads after one campaign").toBe(true);
  return p;
}

function put(key: string): RaftCmdRequest {
  return {
    header: { regionId: 1n, peer: REGION.peers[0], regionEpoch: REGION.regionEpoch, term: 0n },
    requests: [
      {
        cmdType: CmdType.Put,
        put: { cf: "default", key: Buffer.from(key), value: Buffer.from("v") },
        get: undefined,
        delete: undefined,
        snap: undefined,
      },
    ],
    adminRequest: undefined,
  };
}

function command(peer: Peer, req: RaftCmdRequest): RaftCmdResponse[] {
  const answers: RaftCmdResponse[] = [];
  peer.handle({ type: "command", req, done: (r) => answers.push(r) });
  return answers;
}

describe("a peer's door", () => {
  it("gives each request its policy", () => {
    const done = () => undefined;
    const admin = (cmdType: AdminCmdType) => RaftCmdRequest.fromPartial({ adminRequest: { cmdType } });
    expect(inspectRequest({ type: "read", req: put("k"), deadline: 0, done })).toBe("readIndex");
    expect(inspectRequest({ type: "command", req: put("k"), done })).toBe("proposeNormal");
    expect(inspectRequest({ type: "command", req: admin(AdminCmdType.Split), done })).toBe("proposeNormal");
    expect(inspectRequest({ type: "command", req: admin(AdminCmdType.ChangePeer), done })).toBe("proposeConfChange");
    expect(inspectRequest({ type: "command", req: admin(AdminCmdType.TransferLeader), done })).toBe("transferLeader");
  });

  it("a follower answers a command and a read with NotLeader at once and leaves the loop asleep", () => {
    const { peer, wakes } = newPeer();
    const answers = command(peer, put("k"));
    expect(answers.map((a) => a.header?.error?.notLeader?.regionId)).toEqual([1n]);
    const reads: ReadOutcome[] = [];
    peer.handle({ type: "read", req: put("k"), deadline: Number.MAX_SAFE_INTEGER, done: (o) => reads.push(o) });
    expect(reads.map((o) => ("error" in o ? o.error.notLeader?.regionId : undefined))).toEqual([1n]);
    expect(wakes()).toBe(0);
  });

  it("a leader refuses a command of another epoch with EpochNotMatch", () => {
    const { peer } = newLeader();
    const stale = put("k");
    stale.header = { ...stale.header!, regionEpoch: { confVer: 1n, version: 0n } };
    const answers = command(peer, stale);
    expect(answers[0]?.header?.error?.epochNotMatch, "an EpochNotMatch answer").toBeDefined();
  });

  it("a leader queues normal commands until the turn proposes them together, then answers each by its apply", () => {
    const { peer, wakes } = newLeader();
    const before = wakes();
    const a = command(peer, put("a"));
    const b = command(peer, put("b"));
    expect([a, b], "nothing is answered before it applies").toEqual([[], []]);
    expect(wakes() - before, "each queued command wakes the loop").toBe(2);
    peer.proposeQueued();
    const rd = peer.ready();
    expect(
      rd.entries.map((e) => e.index),
      "one batch of entries after the leader's empty entry",
    ).toEqual([7n, 8n]);
    const ok = (index: bigint): { index: bigint; term: bigint; resp: RaftCmdResponse } => ({
      index,
      term: peer.term,
      resp: { header: undefined, responses: [], adminResponse: undefined },
    });
    peer.applied({
      responses: [ok(8n)],
      confChanged: false,
      removedSelf: false,
      splitRegions: [],
      needsSync: false,
      writtenBytes: 0,
    });
    expect(a[0]?.header?.error?.staleCommand, "the entry before the applied one was superseded").toBeDefined();
    expect(b, "the applied entry answers its command").toEqual([
      { header: undefined, responses: [], adminResponse: undefined },
    ]);
  });

  it("a leader that is asked to remove itself hands over and answers NotLeader", () => {
    const { peer } = newLeader();
    const removeSelf = RaftCmdRequest.fromPartial({
      header: { regionId: 1n, regionEpoch: REGION.regionEpoch },
      adminRequest: {
        cmdType: AdminCmdType.ChangePeer,
        changePeer: { changeType: ConfChangeType.RemoveNode, peer: REGION.peers[0] },
      },
    });
    const answers = command(peer, removeSelf);
    expect(answers[0]?.header?.error?.notLeader?.regionId).toBe(1n);
  });

  it("a destroyed peer answers everything waiting on it with RegionNotFound, and proposals in the log with StaleCommand", () => {
    const { peer } = newLeader();
    const inLog = command(peer, put("a"));
    peer.proposeQueued();
    settle(peer);
    const queued = command(peer, put("b"));
    peer.handle({ type: "destroy" });
    expect(peer.destroyed).toBe(true);
    expect(inLog[0]?.header?.error?.staleCommand, "in the log: outcome unknown").toBeDefined();
    expect(queued[0]?.header?.error?.regionNotFound?.regionId, "never proposed: safe to retry").toBe(1n);
  });
});

describe("a peer's proposals", () => {
  it("of an earlier term that a new term's entries cut from the log fail; earlier ones still apply", () => {
    // Before, a leader that regained leadership failed every earlier-term proposal as outcome
    // unknown, though those below its new entries were still in its log and could commit.
    const proposals = new Proposals();
    const answers: string[] = [];
    const answer = (name: string) => ({
      done: (r: { header?: { error?: unknown } }) => answers.push(`${name} ${r.header?.error ? "stale" : "applied"}`),
    });
    const ok = { header: undefined, responses: [], adminResponse: undefined };
    proposals.inTheLog(10n, 5n, [answer("a"), answer("b"), answer("c")]);
    proposals.inTheLog(12n, 7n, [answer("d")]); // the log kept 10 and 11; 12 of term 5 was cut
    expect(answers).toEqual(["c stale"]);
    proposals.finish(10n, 5n, ok, 7n); // survived, committed in term 7
    proposals.finish(11n, 6n, ok, 7n); // another leader's entry took index 11
    proposals.finish(12n, 7n, ok, 7n);
    expect(answers).toEqual(["c stale", "a applied", "b stale", "d applied"]);
  });

  it("fail the proposals of an earlier term before recording a new term's", () => {
    const proposals = new Proposals();
    const answers: string[] = [];
    proposals.inTheLog(10n, 3n, [{ done: () => answers.push("old") }]);
    proposals.inTheLog(10n, 4n, [{ done: (r) => answers.push(r.header?.error ? "stale" : "applied") }]);
    expect(answers).toEqual(["old"]);
    proposals.finish(10n, 4n, { header: undefined, responses: [], adminResponse: undefined }, 4n);
    expect(answers).toEqual(["old", "applied"]);
  });
});
