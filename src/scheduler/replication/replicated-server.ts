import type { Server as HttpServer, IncomingMessage, ServerResponse } from "node:http";
import { Server } from "@grpc/grpc-js";
import { GetMembersResponse, Member, SchedulerService } from "../../proto/schedulerpb.js";
import { SchedulerPeerService } from "../../proto/schedulerraftpb.js";
import type { Logger } from "../../util/logger.js";
import { silentLogger } from "../../util/logger.js";
import type { Runtime, TimerHandle } from "../../util/runtime.js";
import { realRuntime } from "../../util/runtime.js";
import { SchedulerCore } from "../core/core.js";
import { MetaStorage } from "../core/meta-storage.js";
import { createSchedulerHandlers } from "../server/handlers.js";
import { HeartbeatStreams } from "../server/heartbeat-streams.js";
import type { SchedulerServerOptions } from "../server/server.js";
import { bindGrpc, listenStatusServer, splitHostPort } from "../server/server.js";
import { createSchedulerService } from "../server/service.js";
import { createStatusServer } from "../server/status-http.js";
import { createStatusHttpServer } from "../../util/http-status.js";
import { urlScheme } from "../../util/tls.js";
import { logGrpcTlsRefusals } from "../../util/tls-refusals.js";
import type { MemberTiming, Role } from "./member.js";
import { SchedulerMember } from "./member.js";
import type { MemberSpec } from "./members.js";
import { InitialClusterError, clusterToken, parseInitialCluster } from "./members.js";
import type { ServingLeader } from "./member-service.js";
import { createMemberService } from "./member-service.js";
import type { CompactionPolicy } from "./member-storage.js";
import { MemberStorage, checkCompactionPolicy } from "./member-storage.js";
import { PeerTransport } from "./peer-transport.js";
import { ReplicatedMetaKV } from "./replicated-kv.js";

export interface ReplicationOptions {
  /** This member's name in `initialCluster`. */
  name: string;
  /** `s1=host:port,s2=host:port,...`: every member's peer address, the same list on every member. */
  initialCluster: string;
  /** Where this member's peer service listens (default: its address in `initialCluster`). */
  peerAddr?: string;
  timing?: MemberTiming;
  /** This member stopped because it could not persist its raft state (disk full, I/O error). */
  onFatal?: (err: unknown) => void;
  /** When to snapshot the metadata and truncate the raft log (default: every 10000 entries). */
  compaction?: CompactionPolicy;
}

interface Term {
  term: bigint;
  core: SchedulerCore;
  leader: ServingLeader;
  heartbeats: HeartbeatStreams;
  status?: HttpServer;
}

const PEER_MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

/** Retry of a failed take-over (e.g. the barrier timed out) while this member still leads. */
const TAKEOVER_RETRY_MS = 200;

/**
 * One member of a replicated tinyscheduler: a Raft member over the scheduler's metadata, a peer
 * service for the other members, and the client-facing Scheduler service. When it becomes the
 * leader it commits a barrier (so it has applied everything committed before), opens a
 * SchedulerCore on the replicated metadata (which commits fresh id and TSO high-water marks above
 * the last ones before serving), and serves until its term ends.
 */
export class ReplicatedSchedulerServer {
  private current: Term | undefined;
  private takingOver: bigint | undefined;
  private retryTimer: TimerHandle | undefined;
  private stopped = false;
  private readonly readOnlyMeta: MetaStorage;

  private constructor(
    private readonly opts: SchedulerServerOptions,
    readonly self: MemberSpec,
    private readonly members: MemberSpec[],
    readonly member: SchedulerMember,
    /** This member's raft log and applied metadata (tests and tools read it). */
    readonly storage: MemberStorage,
    readonly transport: PeerTransport,
    private readonly grpc: Server,
    private readonly peerGrpc: Server,
    private readonly http: HttpServer | undefined,
    readonly addr: string,
    readonly clientUrl: string,
    readonly statusAddr: string | undefined,
    private readonly log: Logger,
    private readonly runtime: Runtime,
  ) {
    // Reads only: a write through a kv bound to no term is refused.
    this.readOnlyMeta = new MetaStorage(new ReplicatedMetaKV(member, storage, -1n));
  }

  static async start(opts: SchedulerServerOptions, rep: ReplicationOptions): Promise<ReplicatedSchedulerServer> {
    const log = (opts.log ?? silentLogger).child({ member: rep.name });
    const runtime = opts.runtime ?? realRuntime;
    const members = parseInitialCluster(rep.initialCluster);
    const self = members.find((m) => m.name === rep.name);
    if (!self) throw new InitialClusterError(`this member's --name ${rep.name} is not in it`);
    if (rep.compaction) checkCompactionPolicy(rep.compaction);
    const storage = await MemberStorage.open(opts.dataDir ?? "data/scheduler");
    const grpc = new Server({ "grpc.max_receive_message_length": 10 * 1024 * 1024 });
    // A snapshot is the whole metadata in one message.
    const peerGrpc = new Server({ "grpc.max_receive_message_length": PEER_MAX_MESSAGE_BYTES });
    let http: HttpServer | undefined;
    try {
      const { host } = splitHostPort(opts.addr);
      const addr = `${host}:${await bindGrpc(grpc, opts.addr, opts.tls)}`;
      const clientUrl = `${urlScheme(opts.tls)}://${opts.advertiseAddr ?? addr}`;
      await bindGrpc(peerGrpc, rep.peerAddr ?? self.peerAddr, opts.tls, "peer");
      if (opts.tls) {
        logGrpcTlsRefusals(grpc, log, "grpc");
        logGrpcTlsRefusals(peerGrpc, log, "peer");
      }
      let statusAddr: string | undefined;
      let server: ReplicatedSchedulerServer | undefined;
      if (opts.statusAddr) {
        http = createStatusHttpServer({ tls: opts.tls, log }, (req, res) => server?.serveStatus(req, res));
        statusAddr = await listenStatusServer(http, opts.statusAddr, opts.advertiseStatusAddr);
      }
      await storage.bootstrapMembership({
        clusterToken: clusterToken(members),
        members: members.map((m) => ({ id: m.id, name: m.name, peerAddr: m.peerAddr })),
      });
      let member: SchedulerMember | undefined;
      const transport = new PeerTransport({
        self,
        members,
        token: clusterToken(members),
        clientUrl,
        tls: opts.tls,
        runtime,
        log,
        onUnreachable: (id) => member?.reportUnreachable(id),
        onSnapshotSent: (id, delivered) => member?.reportSnapshot(id, delivered),
      });
      member = new SchedulerMember({
        id: self.id,
        peerIds: members.map((m) => m.id),
        storage,
        send: (msgs) => transport.send(msgs),
        runtime,
        log,
        timing: rep.timing,
        onFatal: rep.onFatal,
        compaction: rep.compaction,
      });
      server = new ReplicatedSchedulerServer(
        { ...opts, log, runtime },
        self,
        members,
        member,
        storage,
        transport,
        grpc,
        peerGrpc,
        http,
        addr,
        clientUrl,
        statusAddr,
        log,
        runtime,
      );
      const srv = server;
      peerGrpc.addService(
        SchedulerPeerService,
        transport.service((from, msgs) => member.step(from, msgs)),
      );
      grpc.addService(
        SchedulerService,
        createMemberService({
          serving: () => srv.serving(),
          notLeaderMessage: () => srv.notLeaderMessage(),
          clusterId: () => srv.knownClusterId(),
          getMembers: () => srv.getMembers(),
        }),
      );
      member.onRoleChange((role) => srv.onRole(role));
      member.start();
      transport.start();
      log.info(
        { addr, peer_addr: rep.peerAddr ?? self.peerAddr, member_id: self.id.toString(), members: members.length },
        "tinyscheduler member started",
      );
      return server;
    } catch (err) {
      grpc.forceShutdown();
      peerGrpc.forceShutdown();
      http?.close();
      await storage.close();
      throw err;
    }
  }

  /** The live core while this member serves (tests and tools); undefined otherwise. */
  get core(): SchedulerCore | undefined {
    return this.current?.core;
  }

  async knownClusterId(): Promise<bigint> {
    return this.current?.core.clusterId ?? (await this.readOnlyMeta.loadClusterId()) ?? 0n;
  }

  private serving(): ServingLeader | undefined {
    const t = this.current;
    if (!t || !this.member.hasLease() || this.member.currentRole().term !== t.term) return undefined;
    return t.leader;
  }

  private notLeaderMessage(): string {
    const role = this.member.currentRole();
    if (role.isLeader)
      return `not leader: member ${this.self.name} was elected but is not serving yet (or lost its lease)`;
    const leader = this.members.find((m) => m.id === role.leaderId);
    if (!leader) return `not leader: member ${this.self.name} knows no leader yet (election in progress)`;
    const url = this.transport.clientUrls.get(leader.id);
    return `not leader: the scheduler leader is member ${leader.name}${url ? ` at ${url}` : ""}`;
  }

  async getMembers(): Promise<GetMembersResponse> {
    const role = this.member.currentRole();
    const view = this.members.map((m) => {
      const url = this.transport.clientUrls.get(m.id);
      return Member.create({
        name: m.name,
        memberId: m.id,
        peerUrls: [`${urlScheme(this.opts.tls)}://${m.peerAddr}`],
        clientUrls: url ? [url] : [],
      });
    });
    const leader = view.find((m) => m.memberId === role.leaderId && m.clientUrls.length > 0);
    return GetMembersResponse.create({
      header: { clusterId: await this.knownClusterId() },
      members: view,
      leader,
      etcdLeader: leader,
    });
  }

  private onRole(role: Role): void {
    if (this.stopped) return;
    const t = this.current;
    if (t && (!role.isLeader || role.term !== t.term)) void this.stepDown(t);
    if (role.isLeader && !this.current && this.takingOver !== role.term) void this.takeOver(role.term);
  }

  private async takeOver(term: bigint): Promise<void> {
    this.takingOver = term;
    let core: SchedulerCore | undefined;
    try {
      await this.member.propose({ puts: [], deletes: [], barrier: true }, term);
      core = await SchedulerCore.open(new ReplicatedMetaKV(this.member, this.storage, term), this.opts);
      const role = this.member.currentRole();
      if (this.stopped || !role.isLeader || role.term !== term) {
        await core.close();
        return;
      }
      const heartbeats = new HeartbeatStreams(core.clusterId, core.cluster.clock, this.runtime, this.log);
      core.oc.setSink((cmd) => heartbeats.send(cmd));
      const self = { name: this.self.name, clientUrl: this.clientUrl };
      const leader: ServingLeader = {
        service: createSchedulerService(core, heartbeats, self, this.log),
        handlers: createSchedulerHandlers(core, self),
        streams: new Set(),
      };
      this.current = {
        term,
        core,
        leader,
        heartbeats,
        status: this.http ? createStatusServer(core, this.log, this.opts.tls) : undefined,
      };
      heartbeats.startKeepAlive();
      core.start();
      this.log.info(
        { term: term.toString(), cluster_id: core.clusterId.toString() },
        "this member now serves as scheduler leader",
      );
    } catch (err) {
      if (core) await core.close();
      const role = this.member.currentRole();
      this.log.warn({ err, term: term.toString() }, "taking over as scheduler leader failed");
      if (!this.stopped && role.isLeader && role.term === term) {
        this.retryTimer = this.runtime.setTimeout(() => this.onRole(this.member.currentRole()), TAKEOVER_RETRY_MS);
      }
    } finally {
      if (this.takingOver === term) this.takingOver = undefined;
    }
  }

  private stepDown(t: Term): Promise<void> {
    this.current = undefined;
    this.log.info({ term: t.term.toString() }, "this member no longer serves as scheduler leader");
    t.heartbeats.closeAll();
    for (const s of t.leader.streams) if (!s.destroyed) s.end();
    return t.core
      .close()
      .catch((err: unknown) => this.log.warn({ err }, "closing the old term's scheduler core failed"));
  }

  private serveStatus(req: IncomingMessage, res: ServerResponse): void {
    const t = this.current;
    if (t?.status && this.serving()) {
      t.status.emit("request", req, res);
      return;
    }
    res.writeHead(503, { "content-type": "application/json" });
    res.end(`${JSON.stringify({ error: this.notLeaderMessage() })}\n`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.runtime.clearTimeout(this.retryTimer);
    this.member.stop();
    this.transport.close();
    if (this.current) await this.stepDown(this.current);
    const shutdown = (s: Server) =>
      new Promise<void>((resolve) => {
        const timer = this.runtime.setTimeout(() => {
          s.forceShutdown();
          resolve();
        }, 2000);
        s.tryShutdown(() => {
          this.runtime.clearTimeout(timer);
          resolve();
        });
      });
    await Promise.all([shutdown(this.grpc), shutdown(this.peerGrpc)]);
    if (this.http) {
      this.http.closeAllConnections();
      await new Promise<void>((r) => this.http!.close(() => r()));
    }
    await this.storage.close();
    this.log.info("tinyscheduler member stopped");
  }
}
