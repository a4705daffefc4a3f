// Lab 3C balance-region (TinyKV scheduler/server/schedulers/balance_test.go, *3C cases).
import { describe, expect, it } from "vitest";
import { Peer } from "../../src/proto/metapb.js";
import { BalanceRegionScheduler } from "../../src/scheduler/schedulers/balance-region.js";
import type { Operator } from "../../src/scheduler/schedule/operator.js";
import { OpKind } from "../../src/scheduler/schedule/operator.js";
import { withRegion } from "../../src/scheduler/core/region-info.js";
import { OperatorController } from "../../src/scheduler/schedule/operator-controller.js";
import { MockCluster } from "./mock-cluster.js";

function checkTransferPeer(op: Operator | undefined, source: number, target: number): void {
  expect(op, `expected a move from store ${source} to store ${target}`).toBeDefined();
  const o = op!;
  let kind: number = OpKind.Balance | OpKind.Region;
  if (o.length === 2) {
    expect(o.step(0)).toMatchObject({ type: "add_peer", toStore: BigInt(target) });
    expect(o.step(1)).toMatchObject({ type: "remove_peer", fromStore: BigInt(source) });
  } else {
    expect(o.length).toBe(3);
    expect(o.step(0)).toMatchObject({ type: "add_peer", toStore: BigInt(target) });
    expect(o.step(1)).toMatchObject({ type: "transfer_leader", fromStore: BigInt(source) });
    expect(o.step(2)).toMatchObject({ type: "remove_peer", fromStore: BigInt(source) });
    kind |= OpKind.Leader;
  }
  expect(o.kind & kind).toBe(kind);
}

function checkTransferPeerWithLeaderTransfer(op: Operator | undefined, source: number, target: number): void {
  expect(op?.length, "a move that hands the leadership over has 3 steps").toBe(3);
  checkTransferPeer(op, source, target);
}

describe("lab3c balance-region", () => {
  const sb = new BalanceRegionScheduler({ regionScheduleLimit: 64 });

  it("TestReplicas13C", () => {
    const tc = new MockCluster();
    tc.setMaxReplicas(1);
    tc.addRegionStore(1, 6);
    tc.addRegionStore(2, 8);
    tc.addRegionStore(3, 8);
    tc.addRegionStore(4, 16);
    tc.addLeaderRegion(1, 4);
    checkTransferPeerWithLeaderTransfer(sb.schedule(tc.cluster, tc.oc, tc.allocPeerId), 4, 1);

    // Store 1 offline is filtered out; store 2 becomes the one with the least regions.
    tc.setStoreOffline(1);
    tc.updateRegionCount(2, 6);
    checkTransferPeerWithLeaderTransfer(sb.schedule(tc.cluster, tc.oc, tc.allocPeerId), 4, 2);

    // A 1-peer region is not moved while max-replicas is 3.
    tc.setMaxReplicas(3);
    expect(sb.schedule(tc.cluster, tc.oc, tc.allocPeerId)).toBeUndefined();
    tc.setMaxReplicas(1);
    expect(sb.schedule(tc.cluster, tc.oc, tc.allocPeerId)).toBeDefined();
  });

  it("TestReplicas33C", () => {
    const tc = new MockCluster();
    tc.addRegionStore(1, 16);
    tc.addRegionStore(2, 15);
    tc.addRegionStore(3, 14);
    tc.addLeaderRegion(1, 1, 2, 3);
    expect(sb.schedule(tc.cluster, tc.oc, tc.allocPeerId), "no store to move to").toBeUndefined();

    tc.addRegionStore(4, 2);
    checkTransferPeer(sb.schedule(tc.cluster, tc.oc, tc.allocPeerId), 1, 4);
    tc.addRegionStore(5, 1);
    checkTransferPeer(sb.schedule(tc.cluster, tc.oc, tc.allocPeerId), 1, 5);
    tc.addRegionStore(6, 0);
    checkTransferPeer(sb.schedule(tc.cluster, tc.oc, tc.allocPeerId), 1, 6);
    tc.setStoreDown(6);
    checkTransferPeer(sb.schedule(tc.cluster, tc.oc, tc.allocPeerId), 1, 5);

    tc.setStoreDown(4);
    tc.setStoreDown(5);
    tc.setStoreDown(6);
    tc.addRegionStore(7, 20); // larger than the source: not worth it
    expect(sb.schedule(tc.cluster, tc.oc, tc.allocPeerId)).toBeUndefined();
  });

  it("TestReplicas53C", () => {
    const tc = new MockCluster();
    tc.setMaxReplicas(5);
    tc.addRegionStore(1, 4);
    tc.addRegionStore(2, 5);
    tc.addRegionStore(3, 6);
    tc.addRegionStore(4, 7);
    tc.addRegionStore(5, 28);
    tc.addLeaderRegion(1, 1, 2, 3, 4, 5);

    tc.addRegionStore(6, 1);
    checkTransferPeer(sb.schedule(tc.cluster, tc.oc, tc.allocPeerId), 5, 6);
    tc.addRegionStore(7, 5);
    checkTransferPeer(sb.schedule(tc.cluster, tc.oc, tc.allocPeerId), 5, 6);

    tc.addLeaderRegion(1, 2, 3, 4, 5, 6);
    checkTransferPeer(sb.schedule(tc.cluster, tc.oc, tc.allocPeerId), 5, 1);

    tc.addRegionStore(11, 29);
    tc.addRegionStore(12, 8);
    tc.addRegionStore(13, 7);
    tc.addLeaderRegion(1, 2, 3, 11, 12, 13);
    checkTransferPeer(sb.schedule(tc.cluster, tc.oc, tc.allocPeerId), 11, 6);
  });

  it("TestReplacePendingRegion3C: a region with a pending peer on the source goes first", () => {
    const tc = new MockCluster();
    tc.addRegionStore(1, 16);
    tc.addRegionStore(2, 7);
    tc.addRegionStore(3, 15);
    tc.addRegionStore(4, 10);
    tc.addLeaderRegion(1, 1, 2, 3);
    tc.addLeaderRegion(2, 1, 2, 3);
    tc.addLeaderRegion(3, 2, 1, 3);
    const r3 = tc.getRegion(3);
    tc.putRegion(withRegion(r3, { pendingPeers: [Peer.create(r3.meta.peers.find((p) => p.storeId === 1n)!)] }));
    const op = sb.schedule(tc.cluster, tc.oc, tc.allocPeerId);
    expect(op?.regionId).toBe(3n);
    checkTransferPeer(op, 1, 4);
  });

  it("respects the region schedule limit and skips regions that already have an operator", () => {
    const tc = new MockCluster();
    tc.addRegionStore(1, 16);
    tc.addRegionStore(2, 15);
    tc.addRegionStore(3, 14);
    tc.addRegionStore(4, 0);
    tc.addLeaderRegion(1, 1, 2, 3);
    const op = sb.schedule(tc.cluster, tc.oc, tc.allocPeerId)!;
    expect(tc.oc.add(op)).toBe(true);
    expect(sb.schedule(tc.cluster, tc.oc, tc.allocPeerId), "region 1 is busy with an operator").toBeUndefined();
    tc.addLeaderRegion(2, 1, 2, 3);
    const limited = new BalanceRegionScheduler({ regionScheduleLimit: 1 });
    expect(limited.schedule(tc.cluster, tc.oc, tc.allocPeerId), "limit of 1 running region operator").toBeUndefined();
    expect(sb.schedule(tc.cluster, tc.oc, tc.allocPeerId)?.regionId).toBe(2n);
  });

  /** 3 stores holding 10 regions of size 10 each (30 replicas) and an empty 4th store. */
  function fourthStoreJoins(): MockCluster {
    const tc = new MockCluster();
    for (const s of [1, 2, 3]) tc.addRegionStore(s, 10);
    tc.addRegionStore(4, 0);
    for (let r = 1; r <= 10; r++)
      tc.addLeaderRegion(r, ((r - 1) % 3) + 1, ...[1, 2, 3].filter((s) => s !== ((r - 1) % 3) + 1));
    return tc;
  }

  /** Runs the scheduler back to back with no heartbeat in between, as the coordinator does after a success. */
  function scheduleUntilIdle(tc: MockCluster, sched: BalanceRegionScheduler): Operator[] {
    const ops: Operator[] = [];
    for (let i = 0; i < 50; i++) {
      const op = sched.schedule(tc.cluster, tc.oc, tc.allocPeerId);
      if (!op) break;
      expect(tc.oc.add(op)).toBe(true);
      ops.push(op);
    }
    return ops;
  }

  it("counts running operators: a 4th store gets what it lacks, not every region, before any heartbeat", () => {
    const tc = fourthStoreJoins();
    const roomy = new BalanceRegionScheduler({ maxSnapshots: 100, maxPendingPeers: 100 });
    const ops = scheduleUntilIdle(tc, roomy);
    // 30 replicas over 4 stores: 7 or 8 each, so 7 moves; the old scheduler planned all 10.
    expect(ops.length).toBe(7);
    expect(new Set(ops.map((o) => o.regionId)).size).toBe(7);
    const infl = tc.oc.influence(tc.cluster);
    expect(infl.of(4n).regionSize, "store 4 counts its 7 incoming regions").toBe(70);
    expect(infl.of(1n).regionSize + infl.of(2n).regionSize + infl.of(3n).regionSize).toBe(-70);
  });

  it("stops at the in-flight snapshot limit of the target, and records the limit it hit", () => {
    const tc = fourthStoreJoins();
    const ops = scheduleUntilIdle(tc, new BalanceRegionScheduler({ maxSnapshots: 3 }));
    expect(ops.length, "store 4 may receive 3 snapshots at a time").toBe(3);
    expect(ops.map((o) => o.step(0))).toEqual(
      ops.map(() => expect.objectContaining({ type: "add_peer", toStore: 4n })),
    );
    expect(sb.schedule(tc.cluster, tc.oc, tc.allocPeerId)).toBeUndefined();
    // A store with too many pending peers is skipped as a target too.
    const tc2 = fourthStoreJoins();
    tc2.cluster.getStore(4n)!.pendingPeerCount = 16;
    expect(
      new BalanceRegionScheduler({ maxPendingPeers: 16 }).schedule(tc2.cluster, tc2.oc, tc2.allocPeerId),
    ).toBeUndefined();
  });

  it("a store-level rate limit: no more moves into a store than its tokens, refilled over time", () => {
    const tc = fourthStoreJoins();
    const oc = new OperatorController(() => tc.now, undefined, { perMinute: 6, burst: 2 });
    const sched = new BalanceRegionScheduler({ maxSnapshots: 100 });
    const plan = () => {
      const op = sched.schedule(tc.cluster, oc, tc.allocPeerId);
      if (op) oc.add(op);
      return op;
    };
    expect(plan()).toBeDefined();
    expect(plan()).toBeDefined();
    expect(plan(), "burst of 2 spent").toBeUndefined();
    tc.now += 10_000; // 6 per minute: one token every 10 s
    const op = plan();
    expect(op).toBeDefined();
    expect(op!.decision?.limitsHit ?? [], "a decision lists the limits it ran into").toEqual([]);
    expect(plan()).toBeUndefined();
  });

  it("records why: scheduler, source and target scores with and without running operators", () => {
    const tc = fourthStoreJoins();
    const first = sb.schedule(tc.cluster, tc.oc, tc.allocPeerId)!;
    tc.oc.add(first);
    const second = sb.schedule(tc.cluster, tc.oc, tc.allocPeerId)!;
    const d = second.decision!;
    expect(d.scheduler).toBe("balance-region");
    expect(d.target).toEqual({ storeId: 4n, reported: 0, withInfluence: 10 });
    expect(d.source!.reported).toBe(100);
    expect(d.regionSize).toBe(10);
    expect(second.toJSON().decision).toMatchObject({
      scheduler: "balance-region",
      target: { store_id: "4", score: 10, reported_score: 0 },
    });
    expect(second.describe()).toMatch(
      /balance-region: .*source store \d score \d+.*target store 4 score 10 \(reported 0\)/,
    );
  });
});

describe("operator influence", () => {
  it("counts each unfinished step once: a peer the heartbeat already shows is in the statistics, not the influence", () => {
    const tc = new MockCluster();
    for (const s of [1, 2, 3]) tc.addRegionStore(s, 10);
    tc.addRegionStore(4, 0);
    const r = tc.addLeaderRegion(1, 1, 2, 3);
    const op = new BalanceRegionScheduler().schedule(tc.cluster, tc.oc, tc.allocPeerId)!;
    expect(tc.oc.add(op)).toBe(true);
    const source = (op.steps.at(-1) as { fromStore: bigint }).fromStore;
    const added = op.steps[0] as { toStore: bigint; peerId: bigint };
    const infl = () => tc.oc.influence(tc.cluster);
    expect([infl().of(4n).regionSize, infl().of(source).regionSize, infl().of(4n).receivingSnapshots]).toEqual([
      10, -10, 1,
    ]);
    expect(infl().of(1n).sendingSnapshots, "the leader sends the snapshot").toBe(1);

    // The new peer shows up, still pending: its size is now reported, its snapshot is still in flight.
    const withPeer = withRegion(r, {
      meta: {
        ...r.meta,
        peers: [...r.meta.peers, Peer.create({ id: added.peerId, storeId: 4n })],
        regionEpoch: { confVer: 2n, version: 1n },
      },
      pendingPeers: [Peer.create({ id: added.peerId, storeId: 4n })],
    });
    tc.putRegion(withPeer);
    expect([infl().of(4n).regionSize, infl().of(4n).receivingSnapshots]).toEqual([0, 1]);
    // Caught up: only the removal is left.
    tc.putRegion(withRegion(withPeer, { pendingPeers: [] }));
    tc.oc.dispatch(tc.getRegion(1));
    expect([infl().of(4n).regionSize, infl().of(4n).receivingSnapshots, infl().of(source).regionSize]).toEqual([
      0, 0, -10,
    ]);
  });
});
