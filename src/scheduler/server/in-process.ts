/**
 * The real scheduler (SchedulerCore and the rpc handlers the gRPC service uses) in the same
 * process as its callers, for the deterministic simulation: every call and every heartbeat
 * crosses a simulated link (a delay on the injected runtime each way) and fails as UNAVAILABLE
 * while the scheduler is down. A crash drops everything in flight; a restart reopens the core
 * from its metadata storage, as a tinyscheduler process restart does.
 */
import { status } from "@grpc/grpc-js";
import type { RegionHeartbeatRequest } from "../../proto/schedulerpb.js";
import { RegionHeartbeatResponse } from "../../proto/schedulerpb.js";
import type { Logger } from "../../util/logger.js";
import { silentLogger } from "../../util/logger.js";
import { retryWithBackoff } from "../../util/retry.js";
import type { Runtime } from "../../util/runtime.js";
import { sleep } from "../../util/runtime.js";
import type { SchedulerApi, SchedulerUnaryCalls } from "../api.js";
import { RETRYABLE_SCHEDULER_CODES, SchedulerRpcError } from "../client/client.js";
import type { CoreOptions } from "../core/core.js";
import { SchedulerCore } from "../core/core.js";
import type { SchedulerHandlers } from "./handlers.js";
import { createSchedulerHandlers } from "./handlers.js";
import type { MetaKV } from "../core/meta-kv.js";
import { SchedulerCalls, checkResponseHeader } from "../client/scheduler-calls.js";
import { toGrpcError } from "./service.js";
import { checkTsoCount, firstTimestampOf } from "../client/tso-batcher.js";

export interface InProcessSchedulerOptions {
  runtime: Runtime;
  /** Opens the metadata storage: the same contents on every (re)start, e.g. a simulated disk's file. */
  openKv: () => Promise<MetaKV>;
  /** One-way latency of the simulated link, ms (default 1-4 ms from the runtime's randomness). */
  latencyMs?: () => number;
  core?: Omit<CoreOptions, "runtime" | "log">;
  log?: Logger;
}

/** One life of the scheduler process: a crash ends it, a restart begins the next. */
interface Life {
  core: SchedulerCore;
  handlers: SchedulerHandlers;
  /** Which client gets scheduler commands for a store (its last region heartbeat's stream). */
  bindings: Map<bigint, InProcessSchedulerClient>;
}

export class InProcessScheduler {
  private life: Life | undefined;
  private lives = 0;
  /** Scheduler commands (operator steps) sent to stores, for the simulation's summary. */
  commandsSent = 0;
  /** Known from the first start on: the meta storage keeps it across restarts. */
  private clusterId: bigint | undefined;
  private readonly log: Logger;

  constructor(private readonly opts: InProcessSchedulerOptions) {
    this.log = opts.log ?? silentLogger;
  }

  get logger(): Logger {
    return this.log;
  }

  get runtime(): Runtime {
    return this.opts.runtime;
  }

  get running(): boolean {
    return this.life !== undefined;
  }

  /** The live core (for checks and tools); undefined while down. */
  get core(): SchedulerCore | undefined {
    return this.life?.core;
  }

  /** A number that changes at every crash: an answer computed in another life is lost. */
  get lifeId(): number {
    return this.life ? this.lives : -this.lives;
  }

  /** Opens (or reopens) the core from its metadata storage and starts scheduling. */
  async start(): Promise<void> {
    if (this.life) return;
    const core = await SchedulerCore.open(await this.opts.openKv(), {
      ...this.opts.core,
      runtime: this.opts.runtime,
      log: this.log,
    });
    const life: Life = {
      core,
      handlers: createSchedulerHandlers(core, { name: "tinyscheduler", clientUrl: "in-process" }),
      bindings: new Map(),
    };
    core.oc.setSink((cmd) => this.sendCommand(life, cmd));
    core.start();
    this.lives++;
    this.life = life;
    this.clusterId = core.clusterId;
  }

  /**
   * The process dies: callers see UNAVAILABLE from now on. `halt` stops its storage as a crash
   * would (e.g. the simulated disk's crash(), before which unsynced metadata may be lost).
   */
  async crash(halt: () => Promise<void>): Promise<void> {
    const life = this.life;
    if (!life) return;
    this.life = undefined;
    await halt();
    // The core's timers must stop; its last flush fails on the halted storage, as a crash loses it.
    await life.core.close().catch((err: unknown) => this.log.debug({ err }, "scheduler core closed after a crash"));
  }

  async stop(): Promise<void> {
    const life = this.life;
    this.life = undefined;
    await life?.core.close();
  }

  /** A client whose calls cross the simulated link (the scheduler must have started once, for the cluster id). */
  connect(name: string, options: { retryDeadlineMs?: number } = {}): InProcessSchedulerClient {
    if (this.clusterId === undefined)
      throw new SchedulerRpcError("GetMembers", status.UNAVAILABLE, "scheduler never started");
    return new InProcessSchedulerClient(this, this.clusterId, name, options.retryDeadlineMs ?? 2000);
  }

  latency(): number {
    return this.opts.latencyMs ? this.opts.latencyMs() : 1 + Math.floor(this.opts.runtime.random() * 4);
  }

  /** The handlers of the live process, or UNAVAILABLE. */
  handlers(rpc: string): { handlers: SchedulerHandlers; lifeId: number } {
    if (!this.life) throw new SchedulerRpcError(rpc, status.UNAVAILABLE, "scheduler is down");
    return { handlers: this.life.handlers, lifeId: this.lifeId };
  }

  /** A region heartbeat arrives from `from`. */
  receiveHeartbeat(from: InProcessSchedulerClient, req: RegionHeartbeatRequest): void {
    const life = this.life;
    if (!life) return;
    try {
      const out = life.handlers.regionHeartbeat(req);
      if (out.bindStoreId !== undefined) life.bindings.set(out.bindStoreId, from);
      if (out.reply) this.deliver(from, out.reply);
    } catch (err) {
      // The stream would fail here (cluster id mismatch, unknown store): the store's next heartbeat tries again.
      this.log.debug({ err, client: from.name }, "region heartbeat refused");
    }
  }

  private sendCommand(life: Life, cmd: RegionHeartbeatResponse): boolean {
    const to = cmd.targetPeer ? life.bindings.get(cmd.targetPeer.storeId) : undefined;
    if (!to || to.closed) return false;
    this.commandsSent++;
    this.deliver(to, RegionHeartbeatResponse.create({ ...cmd, header: { clusterId: life.core.clusterId } }));
    return true;
  }

  private deliver(to: InProcessSchedulerClient, resp: RegionHeartbeatResponse): void {
    const lifeId = this.lifeId;
    this.opts.runtime.setTimeout(() => {
      if (this.lifeId === lifeId) to.receive(resp);
    }, this.latency());
  }
}

/** A store's or client's connection to the in-process scheduler: the SchedulerApi over the simulated link. */
export class InProcessSchedulerClient extends SchedulerCalls implements SchedulerApi {
  private readonly subscribers = new Set<(resp: RegionHeartbeatResponse) => void>();
  closed = false;
  readonly leaderAddr = "in-process";
  protected readonly rpc: SchedulerUnaryCalls;

  constructor(
    private readonly host: InProcessScheduler,
    readonly clusterId: bigint,
    readonly name: string,
    private readonly retryDeadlineMs: number,
  ) {
    super();
    const via =
      <Req, Resp>(rpc: string, call: (h: SchedulerHandlers, req: Req) => Promise<Resp>) =>
      (req: Req): Promise<Resp> =>
        this.cross(rpc, (h) => call(h, req));
    this.rpc = {
      getMembers: via("GetMembers", (h, req) => h.getMembers(req)),
      bootstrap: via("Bootstrap", (h, req) => h.bootstrap(req)),
      isBootstrapped: via("IsBootstrapped", (h, req) => h.isBootstrapped(req)),
      allocId: via("AllocID", (h, req) => h.allocId(req)),
      getStore: via("GetStore", (h, req) => h.getStore(req)),
      putStore: via("PutStore", (h, req) => h.putStore(req)),
      getAllStores: via("GetAllStores", (h, req) => h.getAllStores(req)),
      storeHeartbeat: via("StoreHeartbeat", (h, req) => h.storeHeartbeat(req)),
      getRegion: via("GetRegion", (h, req) => h.getRegion(req)),
      getPrevRegion: via("GetPrevRegion", (h, req) => h.getPrevRegion(req)),
      getRegionById: via("GetRegionByID", (h, req) => h.getRegionById(req)),
      scanRegions: via("ScanRegions", (h, req) => h.scanRegions(req)),
      askSplit: via("AskSplit", (h, req) => h.askSplit(req)),
      getClusterConfig: via("GetClusterConfig", (h, req) => h.getClusterConfig(req)),
      putClusterConfig: via("PutClusterConfig", (h, req) => h.putClusterConfig(req)),
      scatterRegion: via("ScatterRegion", (h, req) => h.scatterRegion(req)),
      getGcSafePoint: via("GetGCSafePoint", (h, req) => h.getGcSafePoint(req)),
      updateGcSafePoint: via("UpdateGCSafePoint", (h, req) => h.updateGcSafePoint(req)),
      getOperator: via("GetOperator", (h, req) => h.getOperator(req)),
      memberAdd: via("MemberAdd", (h, req) => h.memberAdd(req)),
      memberRemove: via("MemberRemove", (h, req) => h.memberRemove(req)),
    };
  }

  /**
   * One call: the request crosses the link, the live process answers, the answer crosses back;
   * UNAVAILABLE when the scheduler is down or crashes meanwhile, retried like the gRPC client does.
   */
  private cross<T>(rpc: string, fn: (h: SchedulerHandlers) => Promise<T>): Promise<T> {
    const runtime = this.host.runtime;
    const once = async (): Promise<T> => {
      if (this.closed) throw new SchedulerRpcError(rpc, status.CANCELLED, "client closed");
      await sleep(runtime, this.host.latency());
      const { handlers, lifeId } = this.host.handlers(rpc);
      let resp: T;
      try {
        resp = await fn(handlers);
      } catch (err) {
        const g = toGrpcError(err);
        throw new SchedulerRpcError(rpc, g?.code ?? status.UNKNOWN, g?.message ?? String(err));
      }
      await sleep(runtime, this.host.latency());
      if (this.host.lifeId !== lifeId)
        throw new SchedulerRpcError(rpc, status.UNAVAILABLE, "scheduler crashed before answering");
      return resp;
    };
    return retryWithBackoff(once, {
      what: `scheduler ${rpc}`,
      deadlineMs: this.retryDeadlineMs,
      initialBackoffMs: 50,
      maxBackoffMs: 1000,
      retryable: (err) => err instanceof SchedulerRpcError && RETRYABLE_SCHEDULER_CODES.has(err.code) && !this.closed,
      runtime,
    });
  }

  async tso(count = 1): Promise<bigint> {
    const bad = checkTsoCount(count);
    if (bad) throw bad;
    const resp = await this.cross("Tso", (h) => h.tso({ header: { clusterId: this.clusterId }, count }));
    return firstTimestampOf(checkResponseHeader("Tso", resp), count);
  }

  regionHeartbeat(req: Omit<RegionHeartbeatRequest, "header">): boolean {
    if (this.closed || !this.host.running) return false;
    const lifeId = this.host.lifeId;
    const full: RegionHeartbeatRequest = { ...req, header: { clusterId: this.clusterId } };
    this.host.runtime.setTimeout(() => {
      if (this.host.lifeId === lifeId && !this.closed) this.host.receiveHeartbeat(this, full);
    }, this.host.latency());
    return true;
  }

  onRegionHeartbeatResponse(handler: (resp: RegionHeartbeatResponse) => void): () => void {
    this.subscribers.add(handler);
    return () => this.subscribers.delete(handler);
  }

  /** A scheduler command or heartbeat answer arrived. */
  receive(resp: RegionHeartbeatResponse): void {
    if (this.closed) return;
    for (const h of this.subscribers) {
      try {
        h(resp);
      } catch (err) {
        this.host.logger.warn({ err, client: this.name }, "region heartbeat response handler threw");
      }
    }
  }

  close(): void {
    this.closed = true;
    this.subscribers.clear();
  }
}
