import type { CallOptions, ClientDuplexStream, ServiceError } from "@grpc/grpc-js";
import { Metadata, status } from "@grpc/grpc-js";
import type { GetMembersResponse, RegionHeartbeatResponse, TsoRequest, TsoResponse } from "../../proto/schedulerpb.js";
import { RegionHeartbeatRequest, SchedulerClient } from "../../proto/schedulerpb.js";
import type { Logger } from "../../util/logger.js";
import { silentLogger } from "../../util/logger.js";
import { retryWithBackoff } from "../../util/retry.js";
import type { Runtime } from "../../util/runtime.js";
import { realRuntime } from "../../util/runtime.js";
import type { TlsConfig } from "../../util/tls.js";
import { grpcChannelCredentials } from "../../util/tls.js";
import type { SchedulerApi, SchedulerUnaryCalls } from "../api.js";
import { SchedulerError } from "../errors.js";
import { SchedulerCalls } from "./scheduler-calls.js";
import { TsoBatcher } from "./tso-batcher.js";

export type { RegionWithLeader, SchedulerApi } from "../api.js";
export { SchedulerError };

/** A gRPC-level failure of one scheduler call (the status code tells what: UNAVAILABLE, FAILED_PRECONDITION...). */
export class SchedulerRpcError extends Error {
  constructor(
    readonly method: string,
    readonly code: status,
    details: string,
  ) {
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
  /** Deadlines, backoff and jitter (default: the real clock). */
  runtime?: Runtime;
  /** Mutual TLS to every scheduler member; default plaintext. */
  tls?: TlsConfig;
}

type Callback<T> = (err: ServiceError | null, resp: T) => void;
/** One call of a generated client method, given the metadata, the call options and the callback. */
type Invoke<Resp> = (md: Metadata, opts: CallOptions, cb: Callback<Resp>) => unknown;

export const RETRYABLE_SCHEDULER_CODES: ReadonlySet<status> = new Set([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]);

/** "http://host:port" | "host:port" -> "host:port". */
export function hostPort(url: string): string {
  const s = url.trim();
  if (/^[a-z]+:\/\//i.test(s)) return new URL(s).host;
  return s;
}

/**
 * Typed promise client of the schedulerpb.Scheduler service, for stores and the client library.
 * Finds the leader with GetMembers, then sends the cluster id in every request header.
 * TSO calls share one bidi stream and are batched; region heartbeats share another, re-opened with
 * backoff after errors.
 */
export class SchedulerRpcClient extends SchedulerCalls implements SchedulerApi {
  private readonly handlers = new Set<(resp: RegionHeartbeatResponse) => void>();
  private hbStream: ClientDuplexStream<RegionHeartbeatRequest, RegionHeartbeatResponse> | undefined;
  private hbBackoffMs = 0;
  private hbNextOpenAt = 0;
  private readonly tsoBatcher: TsoBatcher;
  private closed = false;
  private readonly runtime: Runtime;
  /** Every unary rpc through the generated client's own method: a wrong name or type fails to compile. */
  protected readonly rpc: SchedulerUnaryCalls;

  private constructor(
    private readonly client: SchedulerClient,
    readonly clusterId: bigint,
    readonly leaderAddr: string,
    private readonly opts: Required<Omit<SchedulerRpcClientOptions, "log" | "runtime" | "tls">> & {
      log: Logger;
      runtime: Runtime;
    },
  ) {
    super();
    this.runtime = opts.runtime;
    this.tsoBatcher = new TsoBatcher(() => this.openTsoStream(), clusterId, opts.timeoutMs, opts.runtime);
    const c = client;
    this.rpc = {
      getMembers: (req) => this.unary("GetMembers", (md, o, cb) => c.getMembers(req, md, o, cb)),
      bootstrap: (req) => this.unary("Bootstrap", (md, o, cb) => c.bootstrap(req, md, o, cb)),
      isBootstrapped: (req) => this.unary("IsBootstrapped", (md, o, cb) => c.isBootstrapped(req, md, o, cb)),
      allocId: (req) => this.unary("AllocID", (md, o, cb) => c.allocId(req, md, o, cb)),
      getStore: (req) => this.unary("GetStore", (md, o, cb) => c.getStore(req, md, o, cb)),
      putStore: (req) => this.unary("PutStore", (md, o, cb) => c.putStore(req, md, o, cb)),
      getAllStores: (req) => this.unary("GetAllStores", (md, o, cb) => c.getAllStores(req, md, o, cb)),
      storeHeartbeat: (req) => this.unary("StoreHeartbeat", (md, o, cb) => c.storeHeartbeat(req, md, o, cb)),
      getRegion: (req) => this.unary("GetRegion", (md, o, cb) => c.getRegion(req, md, o, cb)),
      getPrevRegion: (req) => this.unary("GetPrevRegion", (md, o, cb) => c.getPrevRegion(req, md, o, cb)),
      getRegionById: (req) => this.unary("GetRegionByID", (md, o, cb) => c.getRegionById(req, md, o, cb)),
      scanRegions: (req) => this.unary("ScanRegions", (md, o, cb) => c.scanRegions(req, md, o, cb)),
      askSplit: (req) => this.unary("AskSplit", (md, o, cb) => c.askSplit(req, md, o, cb)),
      getClusterConfig: (req) => this.unary("GetClusterConfig", (md, o, cb) => c.getClusterConfig(req, md, o, cb)),
      putClusterConfig: (req) => this.unary("PutClusterConfig", (md, o, cb) => c.putClusterConfig(req, md, o, cb)),
      scatterRegion: (req) => this.unary("ScatterRegion", (md, o, cb) => c.scatterRegion(req, md, o, cb)),
      getGcSafePoint: (req) => this.unary("GetGCSafePoint", (md, o, cb) => c.getGcSafePoint(req, md, o, cb)),
      updateGcSafePoint: (req) => this.unary("UpdateGCSafePoint", (md, o, cb) => c.updateGcSafePoint(req, md, o, cb)),
      getOperator: (req) => this.unary("GetOperator", (md, o, cb) => c.getOperator(req, md, o, cb)),
    };
  }

  /** Asks each address for the members (bounded retries with backoff), then talks to the leader. */
  static async connect(addrs: string | string[], options: SchedulerRpcClientOptions = {}): Promise<SchedulerRpcClient> {
    const list = (Array.isArray(addrs) ? addrs : addrs.split(",")).map(hostPort).filter((a) => a.length > 0);
    if (list.length === 0) throw new Error("scheduler connect: no address given");
    const creds = grpcChannelCredentials(options.tls);
    const opts = {
      timeoutMs: options.timeoutMs ?? 1000,
      connectDeadlineMs: options.connectDeadlineMs ?? 10_000,
      retryDeadlineMs: options.retryDeadlineMs ?? 5000,
      log: options.log ?? silentLogger,
      runtime: options.runtime ?? realRuntime,
    };
    return retryWithBackoff(
      async (attempt) => {
        const addr = list[attempt % list.length]!;
        const probe = new SchedulerClient(addr, creds);
        try {
          const resp = await new Promise<GetMembersResponse>((resolve, reject) =>
            probe.getMembers(
              {},
              new Metadata(),
              { deadline: new Date(opts.runtime.now() + opts.timeoutMs) },
              (err, r) => (err ? reject(new SchedulerRpcError("GetMembers", err.code, err.details)) : resolve(r)),
            ),
          );
          const leaderUrl = resp.leader?.clientUrls[0];
          const clusterId = resp.header?.clusterId ?? 0n;
          if (!leaderUrl) throw new Error(`scheduler at ${addr} reported no leader`);
          const leader = hostPort(leaderUrl);
          const client = leader === addr ? probe : new SchedulerClient(leader, creds);
          if (client !== probe) probe.close();
          opts.log.info({ leader, cluster_id: clusterId.toString() }, "connected to scheduler");
          return new SchedulerRpcClient(client, clusterId, leader, opts);
        } catch (err) {
          probe.close();
          throw err;
        }
      },
      {
        what: `connect to scheduler at ${list.join(",")}`,
        deadlineMs: opts.connectDeadlineMs,
        initialBackoffMs: 100,
        maxBackoffMs: 1000,
        runtime: opts.runtime,
      },
    );
  }

  /** One unary call with a deadline, retried on UNAVAILABLE/DEADLINE_EXCEEDED within the retry budget. */
  private unary<Resp>(rpcName: string, invoke: Invoke<Resp>): Promise<Resp> {
    const once = () =>
      new Promise<Resp>((resolve, reject) => {
        if (this.closed) return reject(new SchedulerRpcError(rpcName, status.CANCELLED, "client closed"));
        invoke(new Metadata(), { deadline: new Date(this.runtime.now() + this.opts.timeoutMs) }, (err, resp) =>
          err ? reject(new SchedulerRpcError(rpcName, err.code, err.details)) : resolve(resp),
        );
      });
    return retryWithBackoff(once, {
      what: `scheduler ${rpcName}`,
      deadlineMs: this.opts.retryDeadlineMs,
      initialBackoffMs: 50,
      maxBackoffMs: 1000,
      retryable: (err) => err instanceof SchedulerRpcError && RETRYABLE_SCHEDULER_CODES.has(err.code) && !this.closed,
      runtime: this.runtime,
    });
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
      if (this.runtime.now() < this.hbNextOpenAt) return false;
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
      this.hbNextOpenAt = this.runtime.now() + this.hbBackoffMs;
      if (err && !this.closed)
        this.opts.log.warn({ err: err.message, retry_in_ms: this.hbBackoffMs }, "region heartbeat stream failed");
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
