// The lease rules one by one (src/kv/raftstore/lease.ts, lease-reads.ts): when a leader's lease
// starts, how long it lasts, and every event that ends it early. A 3-node raft node is driven by
// hand; the clocks are fakes the test moves.
import { describe, expect, it } from "vitest";
import type { Message, Ready } from "../../src/raft/index.js";
import { MemoryStorage, MessageType, RawNode, newMessage } from "../../src/raft/index.js";
import type { ApplyOutcome } from "../../src/kv/raftstore/apply.js";
import { LeaderLease } from "../../src/kv/raftstore/lease.js";
import { PeerLease } from "../../src/kv/raftstore/lease-reads.js";
import { ReadQueue } from "../../src/kv/raftstore/reads.js";
import { NO_OBSERVER } from "../../src/kv/raftstore/observer.js";
import { DEFAULT_RAFTSTORE_CONFIG, leaderLeaseMs, resolveConfig } from "../../src/kv/raftstore/config.js";
import type { EngineSnapshot } from "../../src/kv/engine/index.js";
import type { Region } from "../../src/proto/metapb.js";
import { realRuntime } from "../../src/util/runtime.js";

const LEASE_MS = 900;

class Clocks {
  monotonic = 1_000;
  wall = 1_700_000_000_000;
  readonly runtime = { ...realRuntime, now: () => this.wall, monotonicNow: () => this.monotonic };
  advance(ms: number): void {
    this.monotonic += ms;
    this.wall += ms;
  }
}

/** Node 1 of {1, 2, 3}, its lease, and what it sent; `elect` makes it leader of term 1. */
class Leader {
  readonly clocks = new Clocks();
  readonly storage = new MemoryStorage();
  readonly raw = new RawNode({
    id: 1n,
    peers: [1n, 2n, 3n],
    electionTick: 10,
    heartbeatTick: 1,
    storage: this.storage,
    checkQuorum: true,
  });
  readonly peerLease = new PeerLease(this.raw, this.clocks.runtime, LEASE_MS);
  readonly sent: Message[] = [];

  get lease(): LeaderLease {
    return this.peerLease.lease;
  }

  get term(): bigint {
    return this.raw.basicStatus().hardState.term;
  }

  valid(): boolean {
    return this.lease.valid(this.term, this.clocks.monotonic);
  }

  /** One store-loop turn: the Ready goes through the lease, is persisted, sent and advanced. */
  turn(): Ready | undefined {
    if (!this.raw.hasReady()) return undefined;
    const rd = this.raw.ready();
    this.peerLease.ready(rd);
    this.storage.append(rd.entries);
    this.sent.push(...rd.messages);
    this.raw.advance(rd);
    return rd;
  }

  step(m: Partial<Message> & { msgType: MessageType }): void {
    this.peerLease.around(() => this.raw.step(newMessage({ to: 1n, term: this.term, ...m })));
    this.turn();
  }

  elect(): void {
    this.raw.campaign();
    this.turn();
    this.step({ msgType: MessageType.MsgRequestVoteResponse, from: 2n });
    expect(this.raw.isLeader()).toBe(true);
  }

  /** Follower 2 acknowledges everything up to the leader's last index. */
  ackAll(): void {
    this.step({ msgType: MessageType.MsgAppendResponse, from: 2n, index: this.storage.lastIndex() });
  }
}

const NO_APPLY: ApplyOutcome = {
  responses: [],
  confChanged: false,
  removedSelf: false,
  splitRegions: [],
  needsSync: false,
  writtenBytes: 0,
};

describe("lease rules", () => {
  it("lasts (election ticks - 1) ticks less the drift margin, and the margin is checked", () => {
    expect(leaderLeaseMs(DEFAULT_RAFTSTORE_CONFIG)).toBe(810); // 9 ticks of 100 ms, less 10%
    expect(() => resolveConfig({ leaseClockDriftPercent: 100 })).toThrow(/below 100/);
    expect(() => resolveConfig({ leaseReads: "no" })).toThrow(/true or false/);
    expect(resolveConfig({ leaseReads: false }).leaseReads).toBe(false);
  });

  it("a new leader has no lease until an entry of its term commits; then it runs from before the election", () => {
    const l = new Leader();
    const electedAt = l.clocks.monotonic;
    l.elect();
    expect(l.valid(), "no lease before the term's first commit").toBe(false);
    l.clocks.advance(100);
    l.ackAll(); // the no-op commits
    expect(l.valid()).toBe(true);
    expect(l.lease.remainingMs(l.term, l.clocks.monotonic)).toBe(electedAt + LEASE_MS - l.clocks.monotonic);
    l.clocks.advance(LEASE_MS - 100);
    expect(l.valid(), "measured from before the election, not from the ack").toBe(false);
  });

  it("a commit renews from when the entries were proposed, not from when the ack arrived", () => {
    const l = new Leader();
    l.elect();
    l.ackAll();
    l.clocks.advance(500);
    const proposedAt = l.clocks.monotonic;
    const { firstIndex } = l.raw.proposeBatch([Buffer.from("w")]);
    l.peerLease.proposed(l.term, firstIndex, proposedAt);
    l.turn();
    l.clocks.advance(300);
    l.ackAll();
    expect(l.lease.remainingMs(l.term, l.clocks.monotonic)).toBe(proposedAt + LEASE_MS - l.clocks.monotonic);
  });

  it("a confirmed ReadIndex round renews from when it was sent", () => {
    const lease = new LeaderLease(LEASE_MS);
    lease.renew(3n, 100);
    expect(lease.valid(3n, 100 + LEASE_MS - 1)).toBe(true);
    expect(lease.valid(3n, 100 + LEASE_MS)).toBe(false);
    lease.renew(3n, 50); // an older round confirmed late never shortens the lease...
    expect(lease.valid(3n, 100 + LEASE_MS - 1)).toBe(true);
    expect(lease.valid(4n, 200), "...and a lease belongs to its term").toBe(false);
  });

  it("committing an older term's entry does not renew", () => {
    const l = new Leader();
    l.elect();
    const rd: Ready = {
      entries: [],
      committedEntries: [{ entryType: 0, term: 0n, index: 1n, data: Buffer.alloc(0) }],
      messages: [],
      readStates: [],
      mustSync: false,
      termAndVoteDurable: true,
    };
    l.peerLease.ready(rd);
    expect(l.valid()).toBe(false);
  });

  it("stepping down drops the lease", () => {
    const l = new Leader();
    l.elect();
    l.ackAll();
    expect(l.valid()).toBe(true);
    l.step({ msgType: MessageType.MsgAppend, from: 3n, term: l.term + 1n });
    expect(l.raw.isLeader()).toBe(false);
    expect(l.lease.lastDropReason).toBe("step-down");
    expect(l.lease.valid(l.term - 1n, l.clocks.monotonic)).toBe(false);
  });

  it("sending MsgTimeoutNow drops the lease for the rest of the term, even if the transfer is abandoned", () => {
    const l = new Leader();
    l.elect();
    l.ackAll();
    l.raw.transferLeader(2n); // 2 is up to date: MsgTimeoutNow goes out at once
    l.turn();
    expect(l.sent.some((m) => m.msgType === MessageType.MsgTimeoutNow)).toBe(true);
    expect(l.valid()).toBe(false);
    expect(l.lease.lastDropReason).toBe("transfer");
    l.clocks.advance(10);
    l.lease.renew(l.term, l.clocks.monotonic); // a late TimeoutNow could still start an election
    expect(l.valid(), "no lease again in the term that sent MsgTimeoutNow").toBe(false);
  });

  it("a transfer in progress (transferee still catching up) serves no lease read", () => {
    const l = new Leader();
    l.elect();
    l.ackAll();
    l.raw.transferLeader(3n); // 3 has acknowledged nothing: no MsgTimeoutNow yet
    l.turn();
    const reads = new ReadQueue(1n, () => NO_OBSERVER.read(1n));
    let served = 0;
    reads.add({ deadline: Number.MAX_SAFE_INTEGER, req: {} as never, done: () => served++ });
    const [waiter] = reads.takeArrived();
    const region = {} as Region;
    const took = l.peerLease.serve([waiter!], reads, 1n, region, () => ({}) as EngineSnapshot);
    expect(took).toBe(false);
    expect(served).toBe(0);
    expect(l.lease.lastDropReason).toBe("transfer");
  });

  it("a conf change or a split applied drops the lease; evidence sent before the drop does not restore it", () => {
    const cases: Array<[ApplyOutcome, string]> = [
      [{ ...NO_APPLY, confChanged: true }, "conf-change"],
      [{ ...NO_APPLY, splitRegions: [{} as Region] }, "region-change"],
    ];
    for (const [outcome, reason] of cases) {
      const l = new Leader();
      l.elect();
      const before = l.clocks.monotonic;
      l.ackAll();
      l.clocks.advance(5);
      l.peerLease.applied(outcome);
      expect(l.valid(), reason).toBe(false);
      expect(l.lease.lastDropReason).toBe(reason);
      l.lease.renew(l.term, before);
      expect(l.valid(), `${reason}: a round sent before the drop`).toBe(false);
      l.lease.renew(l.term, l.clocks.monotonic + 1);
      expect(l.valid(), `${reason}: a round sent after it`).toBe(true);
    }
  });

  it("a proposed conf change drops the lease", () => {
    const l = new Leader();
    l.elect();
    l.ackAll();
    l.peerLease.drop("conf-change"); // what Peer.proposeConfChange does before proposing
    expect(l.valid()).toBe(false);
  });

  it("a clock jump between two looks (a paused process) drops the lease", () => {
    const monotonicJump = new LeaderLease(LEASE_MS);
    monotonicJump.look(0, 0);
    monotonicJump.renew(1n, 10);
    monotonicJump.look(LEASE_MS / 2, LEASE_MS / 2);
    expect(monotonicJump.valid(1n, LEASE_MS / 2)).toBe(true);
    monotonicJump.look(LEASE_MS / 2 + LEASE_MS + 1, LEASE_MS / 2 + 1); // paused: ticks stopped
    expect(monotonicJump.lastDropReason).toBe("pause");

    // A suspended machine's monotonic clock can stand still while the wall clock moves on.
    const l = new Leader();
    l.elect();
    l.peerLease.tick();
    l.ackAll();
    expect(l.valid()).toBe(true);
    l.clocks.wall += LEASE_MS + 1;
    l.peerLease.tick();
    expect(l.valid()).toBe(false);
    expect(l.lease.lastDropReason).toBe("pause");
  });

  it("a restarted peer grants no vote for an election timeout (it may have acknowledged a lease it forgot)", () => {
    const l = new Leader();
    l.peerLease.holdVotesAfterRestart(1_000);
    const vote = newMessage({ msgType: MessageType.MsgRequestVote, from: 2n, to: 1n, term: 5n });
    const preVote = newMessage({ msgType: MessageType.MsgRequestPreVote, from: 2n, to: 1n, term: 5n });
    const append = newMessage({ msgType: MessageType.MsgAppend, from: 2n, to: 1n, term: 5n });
    expect(l.peerLease.refusesVote(vote)).toBe(true);
    expect(l.peerLease.refusesVote(preVote)).toBe(true);
    expect(l.peerLease.refusesVote(append), "only votes are held").toBe(false);
    l.clocks.advance(1_000);
    expect(l.peerLease.refusesVote(vote), "an election timeout later it votes again").toBe(false);
  });
});
