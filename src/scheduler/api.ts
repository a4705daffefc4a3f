/**
 * What stores, the node bootstrap and the client library need from the scheduler, whatever
 * carries the calls: gRPC to a tinyscheduler (SchedulerRpcClient) or, in the deterministic
 * simulation, the real scheduler in the same process (InProcessSchedulerClient).
 */
import type { handleUnaryCall } from "@grpc/grpc-js";
import type { Cluster, Peer, Region, Store } from "../proto/metapb.js";
import type {
  OperatorStatus,
  RegionHeartbeatRequest,
  RegionHeartbeatResponse,
  SchedulerServer,
  StoreStats,
} from "../proto/schedulerpb.js";

export interface RegionWithLeader {
  region: Region;
  leader?: Peer;
}

export interface OperatorView {
  desc: string;
  kind: string;
  status: OperatorStatus;
}

export interface SchedulerApi {
  readonly clusterId: bigint;
  /** Where the calls go: the leader's host:port (a name for an in-process scheduler). */
  readonly leaderAddr: string;
  allocId(): Promise<bigint>;
  bootstrap(store: Partial<Store> & { id: bigint }): Promise<void>;
  isBootstrapped(): Promise<boolean>;
  putStore(store: Partial<Store> & { id: bigint }): Promise<void>;
  getStore(storeId: bigint): Promise<{ store: Store; stats?: StoreStats }>;
  getAllStores(excludeTombstoneStores?: boolean): Promise<Store[]>;
  storeHeartbeat(stats: Partial<StoreStats> & { storeId: bigint }): Promise<void>;
  /** The region containing `key`, or undefined when the scheduler knows none. */
  getRegion(key: Uint8Array): Promise<RegionWithLeader | undefined>;
  getPrevRegion(key: Uint8Array): Promise<RegionWithLeader | undefined>;
  getRegionById(regionId: bigint): Promise<RegionWithLeader | undefined>;
  /** Regions overlapping [start, end) in key order; empty end = +inf, limit <= 0 = no limit. */
  scanRegions(start: Uint8Array, end?: Uint8Array, limit?: number): Promise<RegionWithLeader[]>;
  askSplit(region: Region): Promise<{ newRegionId: bigint; newPeerIds: bigint[] }>;
  getClusterConfig(): Promise<Cluster>;
  putClusterConfig(cluster: Partial<Cluster> & { maxPeerCount: number }): Promise<void>;
  getGcSafePoint(): Promise<bigint>;
  updateGcSafePoint(safePoint: bigint): Promise<bigint>;
  /** The region's current or last operator; undefined when it has none. */
  getOperator(regionId: bigint): Promise<OperatorView | undefined>;
  /** `count` consecutive timestamps; resolves to the first (the batch is first .. first+count-1). */
  tso(count?: number): Promise<bigint>;
  /** Sends a region heartbeat (fire and forget: leaders send them periodically). Returns whether it was sent. */
  regionHeartbeat(req: Omit<RegionHeartbeatRequest, "header">): boolean;
  /** Registers a handler for scheduler commands (and errors) answering region heartbeats. */
  onRegionHeartbeatResponse(handler: (resp: RegionHeartbeatResponse) => void): () => void;
  close(): void;
}

/** The generated server type without grpc-js's untyped index signature: one key per rpc. */
type SchedulerRpcs = { [K in keyof SchedulerServer as string extends K ? never : K]: SchedulerServer[K] };

/** The unary rpcs of schedulerpb.Scheduler (the generated server type names them all). */
export type SchedulerUnaryRpc = {
  [K in keyof SchedulerRpcs]: SchedulerRpcs[K] extends handleUnaryCall<infer _Req, infer _Resp> ? K : never;
}[keyof SchedulerRpcs];

export type RequestOf<K extends SchedulerUnaryRpc> =
  SchedulerRpcs[K] extends handleUnaryCall<infer Req, infer _Resp> ? Req : never;
export type ResponseOf<K extends SchedulerUnaryRpc> =
  SchedulerRpcs[K] extends handleUnaryCall<infer _Req, infer Resp> ? Resp : never;

/**
 * The scheduler's unary rpcs as promise functions, typed by the generated service: a request of
 * the wrong type or a misspelt rpc fails at compile time. A header error comes back in the
 * response header; anything else (cluster id mismatch, invalid request, unreachable) rejects.
 */
export type SchedulerUnaryCalls = { [K in SchedulerUnaryRpc]: (req: RequestOf<K>) => Promise<ResponseOf<K>> };
