import type { Server as HttpServer, IncomingMessage, ServerResponse } from "node:http";
import { Server } from "@grpc/grpc-js";
import { GetMembersResponse, Member, SchedulerService } from "../../proto/schedulerpb.js";
import type { Membership } from "../../proto/schedulerraftpb.js";
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
import { parseInitialCluster } from "./members.js";
import type { InitialClusterState } from "./join.js";
import { resolveMembership } from "./join.js";
import { MembershipAdmin } from "./membership-admin.js";
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
  /** "existing": join a running group this member was added to (`member add`) instead of starting one. */
  initialClusterState?: InitialClusterState;
  /** How long a joining member asks the group for its membership before it gives up (default 30 s). */
  joinDeadlineMs?: number;
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
  /** `member add` / `member remove`, served while this member leads. */
  readonly admin: MembershipAdmin;
  /** Whether the applied membership named this member once and no longer does. */
  private removed = false;
  /** Whether the applied membership names this member (false while joining, until it is applied). */
  private inAppliedMembership: boolean;

  private constructor(
    private readonly opts: SchedulerServerOptions,
    readonly self: MemberSpec,
    /** The members as of the applied index (or, while joining, as the group told them). */
    private members: MemberSpec[],
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
    membershipStored: boolean,
  ) {
    this.inAppliedMembership = membershipStored && members.some((m) => m.id === self.id);
    // Reads only: a write through a kv bound to no term is refused.
    this.readOnlyMeta = new MetaStorage(new ReplicatedMetaKV(member, storage, -1n));
    this.admin = new MembershipAdmin({
      member,
      storage,
      term: () => this.current?.term ?? -1n,
      clusterId: () => this.knownClusterId(),
      view: () => this.memberView(),
      log,
    });
  }

  static async start(opts: SchedulerServerOptions, rep: ReplicationOptions): Promise<ReplicatedSchedulerServer> {
    const log = (opts.log ?? silentLogger).child({ member: rep.name });
    const runtime = opts.runtime ?? realRuntime;
    const initialCluster = parseInitialCluster(rep.initialCluster);
    if (rep.compaction) checkCompactionPolicy(rep.compaction);
    const storage = await MemberStorage.open(opts.dataDir ?? "data/scheduler");
    let starting;
    try {
      starting = await resolveMembership(storage, {
        name: rep.name,
        initialCluster,
        state: rep.initialClusterState ?? "new",
        joinDeadlineMs: rep.joinDeadlineMs,
        tls: opts.tls,
        runtime,
        log,
      });
    } catch (err) {
      await storage.close();
      throw err;
    }
    const { self, membership } = starting;
    const members = specsOf(membership);
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
      let member: SchedulerMember | undefined;
      const transport = new PeerTransport({
        self,
        members,
        token: membership.clusterToken,
        membership: () => storage.membership,
        clientUrl,
        tls: opts.tls,
        runtime,
        log,
        onUnreachable: (id) => member?.reportUnreachable(id),
        onSnapshotSent: (id, delivered) => member?.reportSnapshot(id, delivered),
      });
      member = new SchedulerMember({
        id: self.id,
        // A joining member starts with no members: the leader's snapshot tells it the group.
        peerIds: starting.stored ? members.map((m) => m.id) : [],
        storage,
        send: (msgs) => transport.send(msgs),
        runtime,
        log,
        timing: rep.timing,
        onFatal: rep.onFatal,
        compaction: rep.compaction,
        onMembershipChange: (m) => server?.onMembership(m),
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
        starting.stored,
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
          memberAdd: (req) => srv.admin.add(req),
          memberRemove: (req) => srv.admin.remove(req),
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

  /** A membership change applied here (or a snapshot installed one): talk to exactly those members. */
  private onMembership(m: Membership): void {
    this.members = specsOf(m);
    const isIn = this.members.some((x) => x.id === this.self.id);
    if (this.inAppliedMembership && !isIn)
      this.log.warn({ member: this.self.name }, "this member was removed from the scheduler group; it serves nothing");
    this.removed = (this.removed || this.inAppliedMembership) && !isIn;
    this.inAppliedMembership = isIn;
    // A removed member has no one left to talk to (the others refuse it).
    this.transport.setMembers(this.removed ? [] : this.members);
  }

  private notLeaderMessage(): string {
    if (this.removed) return `not leader: member ${this.self.name} was removed from the scheduler group`;
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
    const view = this.memberView();
    const leader = view.find((m) => m.memberId === role.leaderId && m.clientUrls.length > 0);
    return GetMembersResponse.create({
      header: { clusterId: await this.knownClusterId() },
      members: view,
      leader,
      etcdLeader: leader,
    });
  }

  private memberView(): Member[] {
    return this.members.map((m) => {
      const url = this.transport.clientUrls.get(m.id);
      return Member.create({
        name: m.name,
        memberId: m.id,
        peerUrls: [`${urlScheme(this.opts.tls)}://${m.peerAddr}`],
        clientUrls: url ? [url] : [],
      });
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

function specsOf(m: Membership): MemberSpec[] {
  return m.members.map((x) => ({ id: x.id, name: x.name, peerAddr: x.peerAddr }));
}
