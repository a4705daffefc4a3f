import type { Peer } from "../../proto/metapb.js";
import { Cluster, Region, Store } from "../../proto/metapb.js";
import type {
  GetMembersResponse,
  GetRegionResponse,
  MemberAddResponse,
  MemberRemoveResponse,
  ResponseHeader,
} from "../../proto/schedulerpb.js";
import { ErrorType, StoreStats } from "../../proto/schedulerpb.js";
import type { OperatorView, RegionWithLeader, SchedulerUnaryCalls } from "../api.js";
import { SchedulerError } from "../errors.js";

/** Throws the response header's error as a SchedulerError; returns the response otherwise. */
export function checkResponseHeader<R extends { header?: ResponseHeader | undefined }>(rpc: string, resp: R): R {
  const e = resp.header?.error;
  if (e && e.type !== ErrorType.OK) throw new SchedulerError(e.type, `${rpc}: ${e.message}`);
  return resp;
}

function regionWithLeader(r: GetRegionResponse): RegionWithLeader | undefined {
  if (!r.region) return undefined;
  return { region: r.region, leader: r.leader && r.leader.id !== 0n ? r.leader : undefined };
}

function realLeader(l: Peer | undefined): Peer | undefined {
  return l && l.id !== 0n ? l : undefined;
}

/**
 * The unary half of SchedulerApi, over any carrier of the typed rpcs (gRPC, in-process): builds
 * each request with the cluster id, checks the response header, unpacks the answer.
 */
export abstract class SchedulerCalls {
  protected abstract readonly rpc: SchedulerUnaryCalls;
  abstract readonly clusterId: bigint;

  protected get header() {
    return { clusterId: this.clusterId };
  }

  /** The scheduler's members and its leader (one member for a single scheduler). */
  async members(): Promise<GetMembersResponse> {
    return checkResponseHeader("GetMembers", await this.rpc.getMembers({ header: this.header }));
  }

  /** Adds a member to a replicated scheduler; resolves once the leader applied the change. */
  async memberAdd(name: string, peerAddr: string): Promise<MemberAddResponse> {
    return checkResponseHeader(
      "MemberAdd",
      await this.rpc.memberAdd({ header: this.header, name, peerUrls: [peerAddr] }),
    );
  }

  /** Removes a member of a replicated scheduler (the leader too: it steps down). */
  async memberRemove(name: string): Promise<MemberRemoveResponse> {
    return checkResponseHeader("MemberRemove", await this.rpc.memberRemove({ header: this.header, name }));
  }

  async allocId(): Promise<bigint> {
    return checkResponseHeader("AllocID", await this.rpc.allocId({ header: this.header })).id;
  }

  async bootstrap(store: Partial<Store> & { id: bigint }): Promise<void> {
    checkResponseHeader("Bootstrap", await this.rpc.bootstrap({ header: this.header, store: Store.create(store) }));
  }

  async isBootstrapped(): Promise<boolean> {
    return checkResponseHeader("IsBootstrapped", await this.rpc.isBootstrapped({ header: this.header })).bootstrapped;
  }

  async putStore(store: Partial<Store> & { id: bigint }): Promise<void> {
    checkResponseHeader("PutStore", await this.rpc.putStore({ header: this.header, store: Store.create(store) }));
  }

  async getStore(storeId: bigint): Promise<{ store: Store; stats?: StoreStats }> {
    const r = checkResponseHeader("GetStore", await this.rpc.getStore({ header: this.header, storeId }));
    if (!r.store) throw new SchedulerError(ErrorType.UNKNOWN, `GetStore: store ${storeId} missing in response`);
    return { store: r.store, stats: r.stats };
  }

  async getAllStores(excludeTombstoneStores = false): Promise<Store[]> {
    return checkResponseHeader(
      "GetAllStores",
      await this.rpc.getAllStores({ header: this.header, excludeTombstoneStores }),
    ).stores;
  }

  async storeHeartbeat(stats: Partial<StoreStats> & { storeId: bigint }): Promise<void> {
    checkResponseHeader(
      "StoreHeartbeat",
      await this.rpc.storeHeartbeat({ header: this.header, stats: StoreStats.fromPartial(stats) }),
    );
  }

  async getRegion(key: Uint8Array): Promise<RegionWithLeader | undefined> {
    return regionWithLeader(
      checkResponseHeader("GetRegion", await this.rpc.getRegion({ header: this.header, regionKey: Buffer.from(key) })),
    );
  }

  async getPrevRegion(key: Uint8Array): Promise<RegionWithLeader | undefined> {
    return regionWithLeader(
      checkResponseHeader(
        "GetPrevRegion",
        await this.rpc.getPrevRegion({ header: this.header, regionKey: Buffer.from(key) }),
      ),
    );
  }

  async getRegionById(regionId: bigint): Promise<RegionWithLeader | undefined> {
    return regionWithLeader(
      checkResponseHeader("GetRegionByID", await this.rpc.getRegionById({ header: this.header, regionId })),
    );
  }

  async scanRegions(start: Uint8Array, end: Uint8Array = Buffer.alloc(0), limit = 0): Promise<RegionWithLeader[]> {
    const r = checkResponseHeader(
      "ScanRegions",
      await this.rpc.scanRegions({
        header: this.header,
        startKey: Buffer.from(start),
        endKey: Buffer.from(end),
        limit,
      }),
    );
    return r.regions.map((region, i) => ({ region, leader: realLeader(r.leaders[i]) }));
  }

  async askSplit(region: Region): Promise<{ newRegionId: bigint; newPeerIds: bigint[] }> {
    const r = checkResponseHeader(
      "AskSplit",
      await this.rpc.askSplit({ header: this.header, region: Region.create(region) }),
    );
    return { newRegionId: r.newRegionId, newPeerIds: r.newPeerIds };
  }

  async getClusterConfig(): Promise<Cluster> {
    return (
      checkResponseHeader("GetClusterConfig", await this.rpc.getClusterConfig({ header: this.header })).cluster ??
      Cluster.create()
    );
  }

  async putClusterConfig(cluster: Partial<Cluster> & { maxPeerCount: number }): Promise<void> {
    checkResponseHeader(
      "PutClusterConfig",
      await this.rpc.putClusterConfig({ header: this.header, cluster: Cluster.create(cluster) }),
    );
  }

  async getGcSafePoint(): Promise<bigint> {
    return checkResponseHeader("GetGCSafePoint", await this.rpc.getGcSafePoint({ header: this.header })).safePoint;
  }

  async updateGcSafePoint(safePoint: bigint): Promise<bigint> {
    return checkResponseHeader(
      "UpdateGCSafePoint",
      await this.rpc.updateGcSafePoint({ header: this.header, safePoint }),
    ).newSafePoint;
  }

  async getOperator(regionId: bigint): Promise<OperatorView | undefined> {
    try {
      const r = checkResponseHeader("GetOperator", await this.rpc.getOperator({ header: this.header, regionId }));
      return { desc: r.desc.toString(), kind: r.kind.toString(), status: r.status };
    } catch (err) {
      if (err instanceof SchedulerError && err.type === ErrorType.REGION_NOT_FOUND) return undefined;
      throw err;
    }
  }
}
