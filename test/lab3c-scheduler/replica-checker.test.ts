// Replica checker: too few peers, too many peers, peers on offline / down / removed stores.
import { describe, expect, it } from "vitest";
import { ReplicaChecker } from "../../src/scheduler/schedulers/replica-checker.js";
import { OpKind } from "../../src/scheduler/schedule/operator.js";
import { Peer } from "../../src/proto/metapb.js";
import { withRegion } from "../../src/scheduler/core/region-info.js";
import { MockCluster } from "./mock-cluster.js";

const rc = new ReplicaChecker();

describe("replica checker", () => {
  it("adds a peer on the healthy store with the least data when a region has too few", () => {
    const tc = new MockCluster();
    tc.addRegionStore(1, 5);
    tc.addRegionStore(2, 5);
    tc.addRegionStore(3, 9);
    tc.addRegionStore(4, 3);
    tc.addRegionStore(5, 1);
    tc.setStoreDown(5);
    const r = tc.addLeaderRegion(1, 1, 2);
    const op = rc.check(tc.cluster, r, tc.allocPeerId)!;
    expect(op.steps).toEqual([{ type: "add_peer", toStore: 4n, peerId: 1001n }]);
    expect(op.kind & (OpKind.Replica | OpKind.Region)).toBe(OpKind.Replica | OpKind.Region);
  });

  it("does nothing for a healthy, fully replicated region", () => {
    const tc = new MockCluster();
    for (const s of [1, 2, 3, 4]) tc.addRegionStore(s, 1);
    expect(rc.check(tc.cluster, tc.addLeaderRegion(1, 1, 2, 3), tc.allocPeerId)).toBeUndefined();
  });

  it("removes the follower on the fullest store when there are too many peers", () => {
    const tc = new MockCluster();
    tc.addRegionStore(1, 50);
    tc.addRegionStore(2, 5);
    tc.addRegionStore(3, 9);
    tc.addRegionStore(4, 3);
    const op = rc.check(tc.cluster, tc.addLeaderRegion(1, 1, 2, 3, 4), tc.allocPeerId)!;
    expect(op.steps, "the leader's store is fullest, but a follower is removed").toEqual([
      { type: "remove_peer", fromStore: 3n },
    ]);
  });

  it("replaces a peer on an offline store (moving the leadership away first)", () => {
    const tc = new MockCluster();
    for (const s of [1, 2, 3]) tc.addRegionStore(s, 5);
    tc.addRegionStore(4, 7);
    tc.setStoreOffline(1);
    const op = rc.check(tc.cluster, tc.addLeaderRegion(1, 1, 2, 3), tc.allocPeerId)!;
    expect(op.steps.map((s) => s.type)).toEqual(["add_peer", "transfer_leader", "remove_peer"]);
    expect(op.steps[0]).toMatchObject({ toStore: 4n });
    expect(op.steps[1]).toMatchObject({ fromStore: 1n });
    expect(op.steps[2]).toMatchObject({ fromStore: 1n });
  });

  it("replaces a peer on a down store, and on a tombstone store", () => {
    const tc = new MockCluster();
    for (const s of [1, 2, 3, 4]) tc.addRegionStore(s, 5);
    tc.setStoreDown(3);
    const r = tc.addLeaderRegion(1, 1, 2, 3);
    expect(rc.check(tc.cluster, r, tc.allocPeerId)!.steps).toEqual([
      { type: "add_peer", toStore: 4n, peerId: 1001n },
      { type: "remove_peer", fromStore: 3n },
    ]);
    tc.addRegionStore(3, 5); // back up
    tc.setStoreTombstone(2);
    expect(rc.check(tc.cluster, r, tc.allocPeerId)!.steps.at(-1)).toEqual({ type: "remove_peer", fromStore: 2n });
  });

  it("removes an unhealthy peer outright when the region is over-replicated; waits when no target exists", () => {
    const tc = new MockCluster();
    for (const s of [1, 2, 3, 4]) tc.addRegionStore(s, 5);
    tc.setStoreDown(4);
    expect(rc.check(tc.cluster, tc.addLeaderRegion(1, 1, 2, 3, 4), tc.allocPeerId)!.steps).toEqual([
      { type: "remove_peer", fromStore: 4n },
    ]);
    const tc2 = new MockCluster();
    for (const s of [1, 2, 3]) tc2.addRegionStore(s, 5);
    tc2.setStoreDown(3);
    expect(
      rc.check(tc2.cluster, tc2.addLeaderRegion(1, 1, 2, 3), tc2.allocPeerId),
      "no 4th store to move to",
    ).toBeUndefined();
  });

  it("a move cancelled after its add step leaves 4 peers: the one still catching up goes, never a caught-up one", () => {
    const tc = new MockCluster();
    tc.addRegionStore(1, 50);
    tc.addRegionStore(2, 5);
    tc.addRegionStore(3, 9);
    tc.addRegionStore(4, 3);
    const r = tc.addLeaderRegion(1, 1, 2, 3, 4);
    const onStore4 = r.meta.peers.find((p) => p.storeId === 4n)!;
    const pending = withRegion(r, { pendingPeers: [Peer.create(onStore4)] });
    tc.putRegion(pending);
    const op = rc.check(tc.cluster, pending, tc.allocPeerId)!;
    expect(op.steps, "store 3 is fullest among followers, but its peer is up to date").toEqual([
      { type: "remove_peer", fromStore: 4n },
    ]);
    expect(op.decision?.scheduler).toBe("replica-checker");
    expect(op.decision?.why).toMatch(/pending/);
  });

  it("with several peers catching up, removes one of them and keeps every up-to-date peer", () => {
    const tc = new MockCluster();
    for (const s of [1, 2, 3, 4]) tc.addRegionStore(s, 5);
    tc.updateRegionCount(2, 40); // the fullest store holds a caught-up follower
    const r = tc.addLeaderRegion(1, 1, 2, 3, 4);
    const pendingPeers = r.meta.peers.filter((p) => p.storeId === 3n || p.storeId === 4n).map((p) => Peer.create(p));
    const region = withRegion(r, { pendingPeers });
    tc.putRegion(region);
    const removed = (rc.check(tc.cluster, region, tc.allocPeerId)!.steps[0] as { fromStore: bigint }).fromStore;
    expect([3n, 4n]).toContain(removed);
  });

  it("draining a store spreads its replicas over the targets instead of sending them all to one", () => {
    const tc = new MockCluster();
    for (const s of [1, 2, 3, 5]) tc.addRegionStore(s, 6);
    tc.addRegionStore(4, 6);
    tc.setStoreOffline(4);
    const targets: bigint[] = [];
    for (let id = 1; id <= 6; id++) {
      const r = tc.addLeaderRegion(id, 1, 2, 4);
      // As the coordinator's patrol: each check sees the operators already planned.
      const op = rc.check(tc.cluster, r, tc.allocPeerId, tc.oc.influence(tc.cluster))!;
      expect(tc.oc.add(op)).toBe(true);
      targets.push((op.steps[0] as { toStore: bigint }).toStore);
    }
    expect(targets.filter((t) => t === 3n).length, `targets ${targets.join(",")}`).toBe(3);
    expect(targets.filter((t) => t === 5n).length, `targets ${targets.join(",")}`).toBe(3);
  });
});
