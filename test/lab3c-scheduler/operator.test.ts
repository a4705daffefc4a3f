// Operators: dispatch on heartbeats, step completion, timeouts, cancellation; the coordinator loop.
import { describe, expect, it } from "vitest";
import { ConfChangeType } from "../../src/proto/eraftpb.js";
import { Peer, Region } from "../../src/proto/metapb.js";
import type { RegionHeartbeatResponse } from "../../src/proto/schedulerpb.js";
import { OperatorStatus } from "../../src/proto/schedulerpb.js";
import { Coordinator } from "../../src/scheduler/schedule/coordinator.js";
import { IdAllocator } from "../../src/scheduler/core/id-allocator.js";
import { movePeerOperator } from "../../src/scheduler/schedule/op-builder.js";
import { REGION_OPERATOR_TIMEOUT_MS } from "../../src/scheduler/schedule/operator.js";
import type { RegionInfo } from "../../src/scheduler/core/region-info.js";
import { withRegion } from "../../src/scheduler/core/region-info.js";
import { MockCluster } from "./mock-cluster.js";

function applyAdd(r: RegionInfo, cmd: RegionHeartbeatResponse, pending = false): RegionInfo {
  const peer = Peer.create(cmd.changePeer!.peer!);
  const e = r.meta.regionEpoch!;
  return withRegion(r, {
    meta: Region.create({ ...r.meta, peers: [...r.meta.peers, peer], regionEpoch: { ...e, confVer: e.confVer + 1n } }),
    pendingPeers: pending ? [peer] : [],
  });
}

describe("operators", () => {
  it("a move-peer operator runs step by step as heartbeats confirm each step", () => {
    const tc = new MockCluster();
    for (const s of [1, 2, 3, 4]) tc.addRegionStore(s, 1);
    let r = tc.addLeaderRegion(1, 1, 2, 3);
    const sent: RegionHeartbeatResponse[] = [];
    tc.oc.setSink((c) => sent.push(c));
    const op = movePeerOperator(tc.cluster, "test move", r, 1n, 4n, 77n, 0);
    expect(tc.oc.add(op, r)).toBe(true);
    expect(tc.oc.add(movePeerOperator(tc.cluster, "second", r, 2n, 4n, 78n, 0)), "one operator per region").toBe(false);

    // Step 1: add peer 77 on store 4, sent to the leader at once.
    expect(sent).toHaveLength(1);
    expect(sent[0]!.changePeer).toEqual({ peer: { id: 77n, storeId: 4n }, changeType: ConfChangeType.AddNode });
    expect(sent[0]!.targetPeer).toEqual(r.leader);
    expect(sent[0]!.regionEpoch).toEqual(r.meta.regionEpoch);

    // The peer appears but is pending: no command re-sent, the step is not done.
    r = applyAdd(r, sent[0]!, true);
    tc.cluster.processRegionHeartbeat(r);
    expect(tc.oc.dispatch(r)).toBeUndefined();
    expect(op.currentStepIndex).toBe(0);

    // Caught up: step 2, transfer the leader away from store 1.
    r = withRegion(r, { pendingPeers: [] });
    const cmd2 = tc.oc.dispatch(r)!;
    expect(cmd2.transferLeader?.peer?.storeId).not.toBe(1n);
    r = withRegion(r, { leader: cmd2.transferLeader!.peer });

    // Step 3: remove the peer on store 1; the command targets the new leader.
    const cmd3 = tc.oc.dispatch(r)!;
    expect(cmd3.changePeer).toMatchObject({ changeType: ConfChangeType.RemoveNode, peer: { storeId: 1n } });
    expect(cmd3.targetPeer).toEqual(r.leader);
    r = withRegion(r, { meta: Region.create({ ...r.meta, peers: r.meta.peers.filter((p) => p.storeId !== 1n) }) });
    expect(tc.oc.dispatch(r)).toBeUndefined();
    expect(tc.oc.get(1n)).toBeUndefined();
    expect(tc.oc.getStatus(1n)?.status).toBe(OperatorStatus.SUCCESS);
  });

  it("times out and is cancelled when the region splits", () => {
    const tc = new MockCluster();
    for (const s of [1, 2, 3, 4]) tc.addRegionStore(s, 1);
    const r = tc.addLeaderRegion(1, 1, 2, 3);
    tc.oc.add(movePeerOperator(tc.cluster, "slow", r, 1n, 4n, 77n, 0));
    tc.now += REGION_OPERATOR_TIMEOUT_MS + 1;
    tc.oc.sweepTimeouts();
    expect(tc.oc.getStatus(1n)?.status).toBe(OperatorStatus.TIMEOUT);

    tc.oc.add(movePeerOperator(tc.cluster, "split", r, 1n, 4n, 78n, 0));
    const split = withRegion(r, { meta: Region.create({ ...r.meta, regionEpoch: { confVer: 1n, version: 2n } }) });
    expect(tc.oc.dispatch(split)).toBeUndefined();
    expect(tc.oc.getStatus(1n)?.status).toBe(OperatorStatus.CANCEL);
  });

  it("the coordinator adds replica and balance operators and waits for heartbeats after a restart", async () => {
    const tc = new MockCluster();
    for (const s of [1, 2, 3]) tc.addRegionStore(s, 1);
    tc.addRegionStore(4, 0);
    let end = 0n;
    const ids = new IdAllocator(
      async (e) => {
        end = e;
      },
      0n,
      100n,
    );
    const coord = new Coordinator(tc.cluster, tc.oc, ids, { prepareTimeoutMs: 60_000 });
    tc.addLeaderRegion(1, 1, 2); // under-replicated
    expect(coord.isPrepared(), "1 known region, none heartbeated yet").toBe(false);
    expect(await coord.tick()).toEqual([]);
    coord.markSeen(1n);
    const ops = await coord.tick();
    expect(ops.map((o) => o.desc)).toEqual([expect.stringContaining("replica-checker: add peer on store 4")]);
    expect(end, "ids were reserved on disk before use").toBeGreaterThanOrEqual(ids.current());
    tc.now += 60_001;
    tc.addLeaderRegion(2, 1, 2, 3);
    expect(coord.isPrepared(), "prepare timeout passed").toBe(true);
  });
});
