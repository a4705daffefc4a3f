// A mock cluster in the style of TinyKV's mockcluster: store statistics are set directly and
// regions are put without recomputing them, so scheduler tests control every number.
import { Peer, Region, StoreState } from "../../src/proto/metapb.js";
import { ClusterModel } from "../../src/scheduler/core/cluster.js";
import { OperatorController } from "../../src/scheduler/schedule/operator-controller.js";
import type { RegionInfo } from "../../src/scheduler/core/region-info.js";
import { newRegionInfo } from "../../src/scheduler/core/region-info.js";

export class MockCluster {
  now = 1_700_000_000_000;
  readonly cluster: ClusterModel;
  readonly oc: OperatorController;
  private nextId = 1000n;

  constructor(maxReplicas = 3, seed = 1) {
    let s = seed;
    const rng = () => {
      // xorshift: deterministic "random" region picks
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return ((s >>> 0) % 1_000_000) / 1_000_000;
    };
    this.cluster = new ClusterModel({ clock: () => this.now, rng, maxReplicas });
    this.oc = new OperatorController(() => this.now);
  }

  allocPeerId = (): bigint => ++this.nextId;

  setMaxReplicas(n: number): void {
    this.cluster.maxReplicas = n;
  }

  /** Store `id` with `n` regions of size 10 each (TinyKV AddRegionStore). */
  addRegionStore(id: number, regionCount: number): void {
    const s = this.cluster.putStore({
      id: BigInt(id),
      address: `127.0.0.1:${20160 + id}`,
      state: StoreState.Up,
      statusAddress: "",
    });
    s.regionCount = regionCount;
    s.regionSize = regionCount * 10;
    s.lastHeartbeatMs = this.now;
  }

  /** Store `id` with `n` leaders (TinyKV AddLeaderStore). */
  addLeaderStore(id: number, leaderCount: number): void {
    const s = this.cluster.putStore({
      id: BigInt(id),
      address: `127.0.0.1:${20160 + id}`,
      state: StoreState.Up,
      statusAddress: "",
    });
    s.leaderCount = leaderCount;
    s.leaderSize = leaderCount * 10;
    s.lastHeartbeatMs = this.now;
  }

  updateRegionCount(id: number, n: number): void {
    const s = this.cluster.getStore(BigInt(id))!;
    s.regionCount = n;
    s.regionSize = n * 10;
  }

  updateLeaderCount(id: number, n: number): void {
    const s = this.cluster.getStore(BigInt(id))!;
    s.leaderCount = n;
    s.leaderSize = n * 10;
  }

  setStoreOffline(id: number): void {
    this.cluster.setStoreState(BigInt(id), StoreState.Offline);
  }

  setStoreTombstone(id: number): void {
    this.cluster.setStoreState(BigInt(id), StoreState.Tombstone);
  }

  /** Last heartbeat long ago (TinyKV SetStoreDown). */
  setStoreDown(id: number): void {
    this.cluster.getStore(BigInt(id))!.lastHeartbeatMs = 0;
  }

  setStoreBusy(id: number, busy: boolean): void {
    const s = this.cluster.getStore(BigInt(id))!;
    s.stats = { ...s.stats, isBusy: busy };
  }

  /** Region `id` with its leader on `leaderStore` and followers on the others, size 10 (TinyKV AddLeaderRegion). */
  addLeaderRegion(id: number, leaderStore: number, ...followerStores: number[]): RegionInfo {
    const peers = [leaderStore, ...followerStores].map((s, i) =>
      Peer.create({ id: BigInt(id * 100 + i + 1), storeId: BigInt(s) }),
    );
    const meta = Region.create({
      id: BigInt(id),
      startKey: Buffer.from(`r${String(id).padStart(4, "0")}`),
      endKey: Buffer.from(`r${String(id).padStart(4, "0")}~`),
      regionEpoch: { confVer: 1n, version: 1n },
      peers,
    });
    const r = newRegionInfo(meta, peers[0], { approximateSize: 10 });
    this.cluster.putRegionRaw(r);
    return r;
  }

  putRegion(r: RegionInfo): void {
    this.cluster.putRegionRaw(r);
  }

  getRegion(id: number): RegionInfo {
    const r = this.cluster.getRegion(BigInt(id));
    if (!r) throw new Error(`region ${id} not in the mock cluster`);
    return r;
  }
}
