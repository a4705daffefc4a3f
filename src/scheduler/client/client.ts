import type { CallOptions, ClientDuplexStream, ServiceError } from "@grpc/grpc-js";
import type { ChannelCredentials } from "@grpc/grpc-js";
import { Metadata, status } from "@grpc/grpc-js";
import type {
  GetMembersResponse,
  RegionHeartbeatResponse,
  ResponseHeader,
  TsoRequest,
  TsoResponse,
} from "../../proto/schedulerpb.js";
import type { RegionHeartbeatRequest } from "../../proto/schedulerpb.js";
import { ErrorType, SchedulerClient } from "../../proto/schedulerpb.js";
import type { Logger } from "../../util/logger.js";
import { silentLogger } from "../../util/logger.js";
import { retryWithBackoff } from "../../util/retry.js";
import type { Runtime } from "../../util/runtime.js";
import { realRuntime } from "../../util/runtime.js";
import type { TlsConfig } from "../../util/tls.js";
import { grpcChannelCredentials } from "../../util/tls.js";
import type { SchedulerApi, SchedulerUnaryCalls } from "../api.js";
import { SchedulerError } from "../errors.js";
import { RegionHeartbeatStream } from "./heartbeat-stream.js";
import { SchedulerCalls } from "./scheduler-calls.js";
import { TsoBatcher, TsoStreamError } from "./tso-batcher.js";

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
  private readonly tsoBatcher: TsoBatcher;
  private readonly heartbeats: RegionHeartbeatStream;
  private closed = false;
  private readonly runtime: Runtime;
  /** Every unary rpc through the generated client's own method: a wrong name or type fails to compile. */
  protected readonly rpc: SchedulerUnaryCalls;
  /** The leader's client; replaced when another member turns out to lead. */
  private client: SchedulerClient;
  private leader: string;
  /** Where to look for the leader: the given addresses, then every member GetMembers named. */
  private readonly known: string[];
  private finding: Promise<void> | undefined;

  private constructor(
    client: SchedulerClient,
    readonly clusterId: bigint,
    leaderAddr: string,
    seeds: string[],
    private readonly opts: Required<Omit<SchedulerRpcClientOptions, "log" | "runtime" | "tls">> & {
      creds: ChannelCredentials;
      log: Logger;
      runtime: Runtime;
    },
  ) {
    super();
    this.client = client;
    this.leader = leaderAddr;
    this.known = [...seeds];
    this.runtime = opts.runtime;
    this.tsoBatcher = new TsoBatcher(() => this.openTsoStream(), clusterId, opts.timeoutMs, opts.runtime);
    this.heartbeats = new RegionHeartbeatStream(() => this.client.regionHeartbeat(), clusterId, opts, {
      notLeader: () => void this.findLeaderAgain().catch(() => undefined),
      // The stream may have ended because its member stopped leading: look the leader up again.
      ended: () => {
        if (this.known.length > 1) void this.findLeaderAgain().catch(() => undefined);
      },
    });
    // Each call goes to the current leader's client, read at call time (it changes at a failover).
    this.rpc = {
      getMembers: (req) => this.unary("GetMembers", (md, o, cb) => this.client.getMembers(req, md, o, cb)),
      bootstrap: (req) => this.unary("Bootstrap", (md, o, cb) => this.client.bootstrap(req, md, o, cb)),
      isBootstrapped: (req) => this.unary("IsBootstrapped", (md, o, cb) => this.client.isBootstrapped(req, md, o, cb)),
      allocId: (req) => this.unary("AllocID", (md, o, cb) => this.client.allocId(req, md, o, cb)),
      getStore: (req) => this.unary("GetStore", (md, o, cb) => this.client.getStore(req, md, o, cb)),
      putStore: (req) => this.unary("PutStore", (md, o, cb) => this.client.putStore(req, md, o, cb)),
      getAllStores: (req) => this.unary("GetAllStores", (md, o, cb) => this.client.getAllStores(req, md, o, cb)),
      storeHeartbeat: (req) => this.unary("StoreHeartbeat", (md, o, cb) => this.client.storeHeartbeat(req, md, o, cb)),
      getRegion: (req) => this.unary("GetRegion", (md, o, cb) => this.client.getRegion(req, md, o, cb)),
      getPrevRegion: (req) => this.unary("GetPrevRegion", (md, o, cb) => this.client.getPrevRegion(req, md, o, cb)),
      getRegionById: (req) => this.unary("GetRegionByID", (md, o, cb) => this.client.getRegionById(req, md, o, cb)),
      scanRegions: (req) => this.unary("ScanRegions", (md, o, cb) => this.client.scanRegions(req, md, o, cb)),
      askSplit: (req) => this.unary("AskSplit", (md, o, cb) => this.client.askSplit(req, md, o, cb)),
      getClusterConfig: (req) =>
        this.unary("GetClusterConfig", (md, o, cb) => this.client.getClusterConfig(req, md, o, cb)),
      putClusterConfig: (req) =>
        this.unary("PutClusterConfig", (md, o, cb) => this.client.putClusterConfig(req, md, o, cb)),
      scatterRegion: (req) => this.unary("ScatterRegion", (md, o, cb) => this.client.scatterRegion(req, md, o, cb)),
      getGcSafePoint: (req) => this.unary("GetGCSafePoint", (md, o, cb) => this.client.getGcSafePoint(req, md, o, cb)),
      updateGcSafePoint: (req) =>
        this.unary("UpdateGCSafePoint", (md, o, cb) => this.client.updateGcSafePoint(req, md, o, cb)),
      getOperator: (req) => this.unary("GetOperator", (md, o, cb) => this.client.getOperator(req, md, o, cb)),
      memberAdd: (req) => this.unary("MemberAdd", (md, o, cb) => this.client.memberAdd(req, md, o, cb)),
      memberRemove: (req) => this.unary("MemberRemove", (md, o, cb) => this.client.memberRemove(req, md, o, cb)),
    };
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
      runtime: options.runtime ?? realRuntime,
      creds: grpcChannelCredentials(options.tls),
    };
    const found = await retryWithBackoff((attempt) => findLeader(list[attempt % list.length]!, opts), {
      what: `connect to scheduler at ${list.join(",")}`,
      deadlineMs: opts.connectDeadlineMs,
      initialBackoffMs: 100,
      maxBackoffMs: 1000,
      runtime: opts.runtime,
    });
    opts.log.info({ leader: found.leader, cluster_id: found.clusterId.toString() }, "connected to scheduler");
    const client = new SchedulerRpcClient(found.client, found.clusterId, found.leader, list, opts);
    client.learn(found.members);
    return client;
  }

  /** The address of the scheduler member this client talks to (the leader, as last found). */
  get leaderAddr(): string {
    return this.leader;
  }

  private learn(members: string[]): void {
    for (const m of members) if (!this.known.includes(m)) this.known.push(m);
  }

  /**
   * Looks the leader up again (after UNAVAILABLE, a timeout or NOT_LEADER): asks each known member
   * once, the one that failed last; concurrent callers share one search. The caller's retry loop
   * supplies the backoff and the deadline.
   */
  private findLeaderAgain(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.finding ??= this.searchOnce().finally(() => {
      this.finding = undefined;
    });
    return this.finding;
  }

  private async searchOnce(): Promise<void> {
    const order = [...this.known];
    const i = order.indexOf(this.leader);
    if (i >= 0) order.push(...order.splice(0, i + 1));
    let lastError: unknown;
    for (const at of order) {
      if (this.closed) return;
      let found: Found;
      try {
        found = await findLeader(at, this.opts);
      } catch (err) {
        lastError = err;
        continue;
      }
      if (found.clusterId !== this.clusterId) {
        found.client.close();
        lastError = new Error(`scheduler at ${at} belongs to cluster ${found.clusterId}, not ${this.clusterId}`);
        continue;
      }
      this.learn(found.members);
      if (this.closed || found.leader === this.leader) {
        found.client.close();
        return;
      }
      const old = this.client;
      this.opts.log.info({ from: this.leader, to: found.leader }, "scheduler leader changed");
      this.client = found.client;
      this.leader = found.leader;
      this.heartbeats.resetStream();
      this.tsoBatcher.resetStream(`the scheduler leader moved to ${found.leader}`);
      old.close();
      return;
    }
    throw lastError ?? new Error("no scheduler member to ask");
  }

  /**
   * One unary call with a deadline, retried within the retry budget on UNAVAILABLE,
   * DEADLINE_EXCEEDED and NOT_LEADER, each time after looking the leader up again.
   */
  private unary<Resp>(rpcName: string, invoke: Invoke<Resp>): Promise<Resp> {
    const once = () =>
      new Promise<Resp>((resolve, reject) => {
        if (this.closed) return reject(new SchedulerRpcError(rpcName, status.CANCELLED, "client closed"));
        invoke(new Metadata(), { deadline: new Date(this.runtime.now() + this.opts.timeoutMs) }, (err, resp) => {
          if (err) return reject(new SchedulerRpcError(rpcName, err.code, err.details));
          const e = (resp as { header?: ResponseHeader }).header?.error;
          if (e?.type === ErrorType.NOT_LEADER) return reject(new SchedulerError(e.type, `${rpcName}: ${e.message}`));
          resolve(resp);
        });
      }).catch(async (err: unknown) => {
        if (isLeaderProblem(err)) await this.findLeaderAgain().catch(() => undefined);
        throw err;
      });
    return retryWithBackoff(once, {
      what: `scheduler ${rpcName}`,
      deadlineMs: this.opts.retryDeadlineMs,
      initialBackoffMs: 50,
      maxBackoffMs: 1000,
      retryable: (err) => isLeaderProblem(err) && !this.closed,
      runtime: this.runtime,
    });
  }

  /** `count` consecutive timestamps; resolves to the first (the batch is first .. first+count-1). */
  tso(count = 1): Promise<bigint> {
    if (this.closed) return Promise.reject(new SchedulerRpcError("Tso", status.CANCELLED, "client closed"));
    // A timestamp that was lost with a failed stream was never used: asking again is safe.
    return retryWithBackoff(
      () =>
        this.tsoBatcher.get(count).catch(async (err: unknown) => {
          if (isLeaderProblem(err)) await this.findLeaderAgain().catch(() => undefined);
          throw err;
        }),
      {
        what: "scheduler Tso",
        deadlineMs: this.opts.retryDeadlineMs,
        initialBackoffMs: 50,
        maxBackoffMs: 1000,
        retryable: (err) => isLeaderProblem(err) && !this.closed,
        runtime: this.runtime,
      },
    );
  }

  private openTsoStream(): ClientDuplexStream<TsoRequest, TsoResponse> {
    return this.client.tso();
  }

  /**
   * Sends a region heartbeat on the shared stream (see RegionHeartbeatStream: opened on demand,
   * re-opened with backoff after an error). Returns whether it was sent.
   */
  regionHeartbeat(req: Omit<RegionHeartbeatRequest, "header"> | RegionHeartbeatRequest): boolean {
    if (this.closed) return false;
    return this.heartbeats.send(req);
  }

  /** Registers a handler for scheduler commands (and errors) arriving on the heartbeat stream. */
  onRegionHeartbeatResponse(handler: (resp: RegionHeartbeatResponse) => void): () => void {
    return this.heartbeats.onResponse(handler);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.tsoBatcher.close();
    this.heartbeats.close();
    this.client.close();
  }
}

/** An error after which another member may be the one to ask: unreachable, no answer, or not the leader. */
function isLeaderProblem(err: unknown): boolean {
  if (err instanceof SchedulerError) return err.type === ErrorType.NOT_LEADER;
  if (err instanceof SchedulerRpcError) return RETRYABLE_SCHEDULER_CODES.has(err.code);
  if (err instanceof TsoStreamError) return err.code === undefined || RETRYABLE_SCHEDULER_CODES.has(err.code);
  return false;
}

interface Found {
  client: SchedulerClient;
  leader: string;
  clusterId: bigint;
  /** Every member's client address GetMembers named. */
  members: string[];
}

function getMembers(
  client: SchedulerClient,
  opts: { timeoutMs: number; runtime: Runtime },
): Promise<GetMembersResponse> {
  return new Promise<GetMembersResponse>((resolve, reject) =>
    client.getMembers({}, new Metadata(), { deadline: new Date(opts.runtime.now() + opts.timeoutMs) }, (err, r) =>
      err ? reject(new SchedulerRpcError("GetMembers", err.code, err.details)) : resolve(r),
    ),
  );
}

/**
 * Asks one member for the members and the leader; returns a client of the leader once the leader
 * itself confirms it leads (a follower may still name a leader that just died).
 */
async function findLeader(
  addr: string,
  opts: { timeoutMs: number; runtime: Runtime; creds: ChannelCredentials },
): Promise<Found> {
  const probe = new SchedulerClient(addr, opts.creds);
  let client: SchedulerClient | undefined;
  try {
    const resp = await getMembers(probe, opts);
    const leaderUrl = resp.leader?.clientUrls[0];
    const clusterId = resp.header?.clusterId ?? 0n;
    // Reported as unavailable, so callers retry: an election may be in progress.
    if (!leaderUrl)
      throw new SchedulerRpcError("GetMembers", status.UNAVAILABLE, `scheduler at ${addr} reported no leader`);
    const leader = hostPort(leaderUrl);
    const members = resp.members.flatMap((m) => m.clientUrls.slice(0, 1).map(hostPort));
    // A replicated scheduler's first leader creates the cluster id: until then there is none to use.
    const noClusterId = () =>
      new SchedulerRpcError("GetMembers", status.UNAVAILABLE, `the scheduler leader ${leader} has no cluster id yet`);
    if (leader === addr) {
      if (clusterId === 0n) throw noClusterId();
      return { client: probe, leader, clusterId, members };
    }
    client = new SchedulerClient(leader, opts.creds);
    const own = await getMembers(client, opts);
    if (own.leader?.clientUrls[0] === undefined || hostPort(own.leader.clientUrls[0]) !== leader) {
      throw new SchedulerRpcError(
        "GetMembers",
        status.UNAVAILABLE,
        `${leader}, named leader by ${addr}, does not lead`,
      );
    }
    const leaderClusterId = own.header?.clusterId ?? 0n;
    if (leaderClusterId === 0n) throw noClusterId();
    probe.close();
    return { client, leader, clusterId: leaderClusterId, members };
  } catch (err) {
    probe.close();
    client?.close();
    throw err;
  }
}
