import { credentials, Metadata, status, type ClientDuplexStream, type ServiceError } from "@grpc/grpc-js";
import { Cluster, Peer, Region, Store } from "../proto/metapb.js";
import {
  ErrorType,
  OperatorStatus,
  RegionHeartbeatRequest,
  SchedulerClient,
  StoreStats,
  type GetMembersResponse,
  type GetRegionResponse,
  type RegionHeartbeatResponse,
  type ResponseHeader,
  type TsoRequest,
  type TsoResponse,
} from "../proto/schedulerpb.js";
import type { Logger } from "../util/logger.js";
import { silentLogger } from "../util/logger.js";
import { retryWithBackoff } from "../util/retry.js";
import { SchedulerError } from "./errors.js";
import { TsoBatcher } from "./tso-batcher.js";

export { SchedulerError };

/** A gRPC-level failure of one scheduler call (the status code tells what: UNAVAILABLE, FAILED_PRECONDITION...). */
export class SchedulerRpcError extends Error {
  constructor(readonly method: string, readonly code: status, details: string) {
    super(`scheduler ${method}: ${status[code] ?? code}: ${details}`);
    this.name = "SchedulerRpcError";
  }
}

export interface SchedulerRpcClientOptions {
  /** Deadline of each unary call, ms (TinyKV: 1 s). */
  timeoutMs?: number;
  /** Total time to keep retrying GetMembers in connect(), ms. */
  connectDeadlineMs?: number;
  /** Total time to keep retrying a unary call that failed with UNAVAILABLE / DEADLINE_EXCEEDED, ms. */
  retryDeadlineMs?: number;
  log?: Logger;
}

export interface RegionWithLeader {
  region: Region;
  leader?: Peer;
}

type Callback<T> = (err: ServiceError | null, resp: T) => void;
type UnaryMethod<Req, Resp> = (req: Req, md: Metadata, opts: { deadline: Date }, cb: Callback<Resp>) => unknown;

/** gRPC method name -> generated client method, where lower-casing the first letter is not enough. */
const METHOD_KEYS: Record<string, string> = {
  AllocID: "allocId",
  GetRegionByID: "getRegionById",
  GetGCSafePoint: "getGcSafePoint",
  UpdateGCSafePoint: "updateGcSafePoint",
};

const RETRYABLE = new Set([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]);

/** "http://host:port" | "host:port" -> "host:port". */
export function hostPort(url: string): string {
  const s = url.trim();
  if (/^[a-z]+:\/\//i.test(s)) return new URL(s).host;
  return s;
}

function checkHeader(method: string, h: ResponseHeader | undefined): void {
  const e = h?.error;
  if (e && e.type !== ErrorType.OK) throw new SchedulerError(e.type, `${method}: ${e.message}`);
}

/**
 * Typed promise client of the schedulerpb.Scheduler service, for stores and the client library.
 * Finds the leader with GetMembers, then sends the cluster id in every request header.
 * TSO calls share one bidi stream and are batched; region heartbeats share another, re-opened with
 * backoff after errors.
 */
export class SchedulerRpcClient {
  private readonly handlers = new Set<(resp: RegionHeartbeatResponse) => void>();
  private hbStream: ClientDuplexStream<RegionHeartbeatRequest, RegionHeartbeatResponse> | undefined;
  private hbBackoffMs = 0;
  private hbNextOpenAt = 0;
  private readonly tsoBatcher: TsoBatcher;
  private closed = false;

  private constructor(
    private readonly client: SchedulerClient,
    readonly clusterId: bigint,
    readonly leaderAddr: string,
    private readonly opts: Required<Omit<SchedulerRpcClientOptions, "log">> & { log: Logger },
  ) {
    this.tsoBatcher = new TsoBatcher(() => this.openTsoStream(), clusterId, opts.timeoutMs);
  }

  /** Asks each address for the members (bounded retries with backoff), then talks to the leader. */
  static async connect(addrs: string | string[], options: SchedulerRpcClientOptions = {}): Promise<SchedulerRpcClient> {
    const list = (Array.isArray(addrs) ? addrs : addrs.split(",")).map(hostPort).filter((a) => a.length > 0);
    if (list.length === 0) throw new Error("scheduler connect: no address given");
    const opts = {
      timeoutMs: options.timeoutMs ?? 1000,
      connectDeadlineMs: options.connectDeadlineMs ?? 10_000,
      retryDeadlineMs: options.retryDeadlineMs ?? 5000,
      log: options.log ?? silentLogger,
    };
    return retryWithBackoff(
      async (attempt) => {
        const addr = list[attempt % list.length]!;
        const probe = new SchedulerClient(addr, credentials.createInsecure());
        try {
          const resp = await new Promise<GetMembersResponse>((resolve, reject) =>
            probe.getMembers({}, new Metadata(), { deadline: new Date(Date.now() + opts.timeoutMs) }, (err, r) =>
              err ? reject(new SchedulerRpcError("GetMembers", err.code, err.details)) : resolve(r),
            ),
          );
          const leaderUrl = resp.leader?.clientUrls[0];
          const clusterId = resp.header?.clusterId ?? 0n;
          if (!leaderUrl) throw new Error(`scheduler at ${addr} reported no leader`);
          const leader = hostPort(leaderUrl);
          const client = leader === addr ? probe : new SchedulerClient(leader, credentials.createInsecure());
          if (client !== probe) probe.close();
          opts.log.info({ leader, cluster_id: clusterId.toString() }, "connected to scheduler");
          return new SchedulerRpcClient(client, clusterId, leader, opts);
        } catch (err) {
          probe.close();
          throw err;
        }
      },
      { what: `connect to scheduler at ${list.join(",")}`, deadlineMs: opts.connectDeadlineMs, initialBackoffMs: 100, maxBackoffMs: 1000 },
    );
  }

  private get header() {
    return { clusterId: this.clusterId };
  }

  /** One unary call with a deadline, retried on UNAVAILABLE/DEADLINE_EXCEEDED within the retry budget. */
  private call<Req, Resp extends { header?: ResponseHeader }>(method: string, req: Req): Promise<Resp> {
    const key = METHOD_KEYS[method] ?? method.charAt(0).toLowerCase() + method.slice(1);
    const fn = (this.client as unknown as Record<string, UnaryMethod<Req, Resp>>)[key]!;
    const once = () =>
      new Promise<Resp>((resolve, reject) => {
        if (this.closed) return reject(new SchedulerRpcError(method, status.CANCELLED, "client closed"));
        fn.call(this.client, req, new Metadata(), { deadline: new Date(Date.now() + this.opts.timeoutMs) }, (err, resp) => {
          if (err) return reject(new SchedulerRpcError(method, err.code, err.details));
          try {
            checkHeader(method, resp.header);
            resolve(resp);
          } catch (e) {
            reject(e);
          }
        });
      });
    return retryWithBackoff(once, {
      what: `scheduler ${method}`,
      deadlineMs: this.opts.retryDeadlineMs,
      initialBackoffMs: 50,
      maxBackoffMs: 1000,
      retryable: (err) => err instanceof SchedulerRpcError && RETRYABLE.has(err.code) && !this.closed,
    });
  }

  async allocId(): Promise<bigint> {
    return (await this.call<object, { header?: ResponseHeader; id: bigint }>("AllocID", { header: this.header })).id;
  }

  async bootstrap(store: Partial<Store> & { id: bigint }): Promise<void> {
    await this.call("Bootstrap", { header: this.header, store: Store.create(store) });
  }

  async isBootstrapped(): Promise<boolean> {
    return (await this.call<object, { header?: ResponseHeader; bootstrapped: boolean }>("IsBootstrapped", { header: this.header })).bootstrapped;
  }

  async putStore(store: Partial<Store> & { id: bigint }): Promise<void> {
    await this.call("PutStore", { header: this.header, store: Store.create(store) });
  }

  async getStore(storeId: bigint): Promise<{ store: Store; stats?: StoreStats }> {
    const r = await this.call<object, { header?: ResponseHeader; store?: Store; stats?: StoreStats }>("GetStore", { header: this.header, storeId });
    if (!r.store) throw new SchedulerError(ErrorType.UNKNOWN, `GetStore: store ${storeId} missing in response`);
    return { store: r.store, stats: r.stats };
  }

  async getAllStores(excludeTombstoneStores = false): Promise<Store[]> {
    return (await this.call<object, { header?: ResponseHeader; stores: Store[] }>("GetAllStores", { header: this.header, excludeTombstoneStores })).stores;
  }

  async storeHeartbeat(stats: Partial<StoreStats> & { storeId: bigint }): Promise<void> {
    await this.call("StoreHeartbeat", { header: this.header, stats: StoreStats.create(stats as never) });
  }

  private static region(r: GetRegionResponse): RegionWithLeader | undefined {
    if (!r.region) return undefined;
    return { region: r.region, leader: r.leader && r.leader.id !== 0n ? r.leader : undefined };
  }

  /** The region containing `key`, or undefined when the scheduler knows none. */
  async getRegion(key: Uint8Array): Promise<RegionWithLeader | undefined> {
    return SchedulerRpcClient.region(await this.call("GetRegion", { header: this.header, regionKey: Buffer.from(key) }));
  }

  async getPrevRegion(key: Uint8Array): Promise<RegionWithLeader | undefined> {
    return SchedulerRpcClient.region(await this.call("GetPrevRegion", { header: this.header, regionKey: Buffer.from(key) }));
  }

  async getRegionById(regionId: bigint): Promise<RegionWithLeader | undefined> {
    return SchedulerRpcClient.region(await this.call("GetRegionByID", { header: this.header, regionId }));
  }

  /** Regions overlapping [start, end) in key order; empty end = +inf, limit <= 0 = no limit. */
  async scanRegions(start: Uint8Array, end: Uint8Array = Buffer.alloc(0), limit = 0): Promise<RegionWithLeader[]> {
    const r = await this.call<object, { header?: ResponseHeader; regions: Region[]; leaders: Peer[] }>("ScanRegions", {
      header: this.header,
      startKey: Buffer.from(start),
      endKey: Buffer.from(end),
      limit,
    });
    return r.regions.map((region, i) => {
      const l = r.leaders[i];
      return { region, leader: l && l.id !== 0n ? l : undefined };
    });
  }

  async askSplit(region: Region): Promise<{ newRegionId: bigint; newPeerIds: bigint[] }> {
    const r = await this.call<object, { header?: ResponseHeader; newRegionId: bigint; newPeerIds: bigint[] }>("AskSplit", {
      header: this.header,
      region: Region.create(region),
    });
    return { newRegionId: r.newRegionId, newPeerIds: r.newPeerIds };
  }

  async getClusterConfig(): Promise<Cluster> {
    const r = await this.call<object, { header?: ResponseHeader; cluster?: Cluster }>("GetClusterConfig", { header: this.header });
    return r.cluster ?? Cluster.create();
  }

  async putClusterConfig(cluster: Partial<Cluster> & { maxPeerCount: number }): Promise<void> {
    await this.call("PutClusterConfig", { header: this.header, cluster: Cluster.create(cluster) });
  }

  async getGcSafePoint(): Promise<bigint> {
    return (await this.call<object, { header?: ResponseHeader; safePoint: bigint }>("GetGCSafePoint", { header: this.header })).safePoint;
  }

  async updateGcSafePoint(safePoint: bigint): Promise<bigint> {
    return (await this.call<object, { header?: ResponseHeader; newSafePoint: bigint }>("UpdateGCSafePoint", { header: this.header, safePoint })).newSafePoint;
  }

  async getOperator(regionId: bigint): Promise<{ desc: string; kind: string; status: OperatorStatus } | undefined> {
    try {
      const r = await this.call<object, { header?: ResponseHeader; desc: Buffer; kind: Buffer; status: OperatorStatus }>("GetOperator", { header: this.header, regionId });
      return { desc: r.desc.toString(), kind: r.kind.toString(), status: r.status };
    } catch (err) {
      if (err instanceof SchedulerError && err.type === ErrorType.REGION_NOT_FOUND) return undefined;
      throw err;
    }
  }

  /** `count` consecutive timestamps; resolves to the first (the batch is first .. first+count-1). */
  tso(count = 1): Promise<bigint> {
    if (this.closed) return Promise.reject(new SchedulerRpcError("Tso", status.CANCELLED, "client closed"));
    return this.tsoBatcher.get(count);
  }

  private openTsoStream(): ClientDuplexStream<TsoRequest, TsoResponse> {
    return this.client.tso();
  }

  /**
   * Sends a region heartbeat on the shared stream (opened on demand). After a stream error the
   * stream is re-opened on a later call, with exponential backoff (max 5 s); heartbeats sent while
   * backing off are dropped (leaders send them periodically anyway). Returns whether it was sent.
   */
  regionHeartbeat(req: Omit<RegionHeartbeatRequest, "header"> | RegionHeartbeatRequest): boolean {
    if (this.closed) return false;
    if (!this.hbStream) {
      if (Date.now() < this.hbNextOpenAt) return false;
      this.openHeartbeatStream();
    }
    this.hbStream!.write(RegionHeartbeatRequest.create({ ...req, header: this.header }));
    return true;
  }

  /** Registers a handler for scheduler commands (and errors) arriving on the heartbeat stream. */
  onRegionHeartbeatResponse(handler: (resp: RegionHeartbeatResponse) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  private openHeartbeatStream(): void {
    const stream = this.client.regionHeartbeat();
    this.hbStream = stream;
    stream.on("data", (resp: RegionHeartbeatResponse) => {
      this.hbBackoffMs = 0;
      for (const h of this.handlers) {
        try {
          h(resp);
        } catch (err) {
          this.opts.log.warn({ err }, "region heartbeat response handler threw");
        }
      }
    });
    const drop = (err?: Error) => {
      if (this.hbStream !== stream) return;
      this.hbStream = undefined;
      this.hbBackoffMs = Math.min(5000, this.hbBackoffMs === 0 ? 100 : this.hbBackoffMs * 2);
      this.hbNextOpenAt = Date.now() + this.hbBackoffMs;
      if (err && !this.closed) this.opts.log.warn({ err: err.message, retry_in_ms: this.hbBackoffMs }, "region heartbeat stream failed");
    };
    stream.on("error", (err) => drop(err));
    stream.on("end", () => drop());
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.tsoBatcher.close();
    if (this.hbStream) {
      this.hbStream.cancel();
      this.hbStream = undefined;
    }
    this.client.close();
  }
}
