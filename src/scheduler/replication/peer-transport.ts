import type { sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import { Metadata } from "@grpc/grpc-js";
import type { TlsConfig } from "../../util/tls.js";
import { grpcChannelCredentials } from "../../util/tls.js";
import type { Message } from "../../raft/index.js";
import { MessageType } from "../../raft/index.js";
import type {
  Membership,
  MembersRequest,
  MembersResponse,
  RaftBatch,
  RaftBatchResponse,
  SchedulerPeerServer,
} from "../../proto/schedulerraftpb.js";
import { SchedulerPeerClient } from "../../proto/schedulerraftpb.js";
import type { Logger } from "../../util/logger.js";
import type { Runtime, TimerHandle } from "../../util/runtime.js";
import type { MemberSpec } from "./members.js";

/** Calls to one member that may be in flight at once; beyond that messages are dropped (raft resends). */
const MAX_INFLIGHT_PER_PEER = 16;
const CALL_TIMEOUT_MS = 1000;
/** A snapshot carries the whole metadata: give it longer than a batch of appends. */
const SNAPSHOT_CALL_TIMEOUT_MS = 10_000;
const HELLO_INTERVAL_MS = 1000;
/** A member that has been unreachable is logged about at most this often. */
const UNREACHABLE_LOG_MS = 10_000;

export interface PeerTransportOptions {
  self: MemberSpec;
  /** The members to talk to at start; setMembers() follows later changes. */
  members: readonly MemberSpec[];
  /** The group's cluster token: batches with another are refused. */
  token: string;
  /** What this member knows of the membership, for a joining member that asks (undefined: nothing yet). */
  membership: () => Membership | undefined;
  /** This member's client URL, told to the others in every batch (for GetMembers). */
  clientUrl: string;
  runtime: Runtime;
  log: Logger;
  onUnreachable: (id: bigint) => void;
  /** A batch carrying a snapshot to `id` was answered (delivered) or failed or was dropped. */
  onSnapshotSent?: (id: bigint, delivered: boolean) => void;
  /** Mutual TLS between the members (the same certificates as the client port). */
  tls?: TlsConfig;
}

/**
 * Raft messages between the members: one unary SchedulerPeer.Raft call per destination per loop
 * turn, plus a hello every second so each member learns the others' client URLs.
 */
export class PeerTransport {
  private readonly clients = new Map<bigint, SchedulerPeerClient>();
  private readonly inflight = new Map<bigint, number>();
  private readonly lastUnreachableLog = new Map<bigint, number>();
  /** When a sender's batch was last logged as refused (it keeps sending hellos each second). */
  private readonly lastRefusalLog = new Map<string, number>();
  /** Client URLs the other members told us. */
  readonly clientUrls = new Map<bigint, string>();
  private helloTimer: TimerHandle | undefined;
  /** Members whose messages are dropped on the way out and in (tests: a partition). */
  readonly blocked = new Set<bigint>();

  private readonly peerAddrs = new Map<bigint, string>();

  constructor(private readonly opts: PeerTransportOptions) {
    this.setMembers(opts.members);
    this.clientUrls.set(opts.self.id, opts.clientUrl);
  }

  /** Talks to exactly these members from now on (a membership change applied). */
  setMembers(members: readonly MemberSpec[]): void {
    const wanted = new Map(members.filter((m) => m.id !== this.opts.self.id).map((m) => [m.id, m.peerAddr]));
    for (const [id, client] of this.clients) {
      if (wanted.get(id) === this.peerAddrs.get(id)) continue;
      client.close();
      this.clients.delete(id);
      this.peerAddrs.delete(id);
      this.clientUrls.delete(id);
    }
    for (const [id, addr] of wanted) {
      if (this.clients.has(id)) continue;
      this.clients.set(id, new SchedulerPeerClient(addr, grpcChannelCredentials(this.opts.tls)));
      this.peerAddrs.set(id, addr);
    }
  }

  start(): void {
    const hello = () => {
      for (const id of this.clients.keys()) this.call(id, []);
    };
    hello();
    this.helloTimer = this.opts.runtime.setInterval(hello, HELLO_INTERVAL_MS);
  }

  send(messages: Message[]): void {
    const byPeer = new Map<bigint, Message[]>();
    for (const m of messages) {
      const list = byPeer.get(m.to);
      if (list) list.push(m);
      else byPeer.set(m.to, [m]);
    }
    for (const [to, list] of byPeer) this.call(to, list);
  }

  private call(to: bigint, messages: Message[]): void {
    const hasSnapshot = messages.some((m) => m.msgType === MessageType.MsgSnapshot);
    // A leader waits for a snapshot's outcome before it sends that member anything else.
    const snapshotDone = (delivered: boolean) => {
      if (hasSnapshot) this.opts.onSnapshotSent?.(to, delivered);
    };
    const client = this.clients.get(to);
    const inflight = this.inflight.get(to) ?? 0;
    if (!client || this.blocked.has(to) || inflight >= MAX_INFLIGHT_PER_PEER) return snapshotDone(false);
    this.inflight.set(to, inflight + 1);
    const batch: RaftBatch = {
      clusterToken: this.opts.token,
      fromMemberId: this.opts.self.id,
      fromClientUrl: this.opts.clientUrl,
      messages,
    };
    const deadline = new Date(this.opts.runtime.now() + (hasSnapshot ? SNAPSHOT_CALL_TIMEOUT_MS : CALL_TIMEOUT_MS));
    client.raft(batch, new Metadata(), { deadline }, (err, resp) => {
      this.inflight.set(to, (this.inflight.get(to) ?? 1) - 1);
      const problem = err?.details ?? (resp?.error || undefined);
      snapshotDone(!problem);
      if (!problem) return;
      if (messages.length > 0) this.opts.onUnreachable(to);
      const now = this.opts.runtime.now();
      if (now - (this.lastUnreachableLog.get(to) ?? -Infinity) >= UNREACHABLE_LOG_MS) {
        this.lastUnreachableLog.set(to, now);
        this.opts.log.warn({ member: to.toString(), err: problem }, "scheduler member unreachable");
      }
    });
  }

  /** The SchedulerPeer service: checks the batch at the door, then hands its messages to `deliver`. */
  service(deliver: (from: bigint, messages: Message[]) => void): SchedulerPeerServer {
    return {
      raft: (call: ServerUnaryCall<RaftBatch, RaftBatchResponse>, cb: sendUnaryData<RaftBatchResponse>) => {
        const b = call.request;
        const refuse = (error: string) => {
          const now = this.opts.runtime.now();
          const sender = b.fromMemberId.toString();
          if (now - (this.lastRefusalLog.get(sender) ?? -Infinity) >= UNREACHABLE_LOG_MS) {
            // Bounded by the ids that ever tried: forget them all rather than grow without end.
            if (this.lastRefusalLog.size >= 1024) this.lastRefusalLog.clear();
            this.lastRefusalLog.set(sender, now);
            this.opts.log.warn({ from: sender, err: error }, "refused a scheduler peer's batch");
          }
          cb(null, { error });
        };
        if (b.clusterToken !== this.opts.token)
          return refuse(
            `cluster token ${b.clusterToken} differs from ours: the members' --initial-cluster lists differ`,
          );
        if (!this.clients.has(b.fromMemberId))
          return refuse(`member ${b.fromMemberId} is not in our membership (never added, or removed)`);
        if (this.blocked.has(b.fromMemberId)) return cb(null, { error: "partitioned (test)" });
        for (const m of b.messages) {
          if (m.to !== this.opts.self.id || m.from !== b.fromMemberId)
            return refuse(
              `message from ${m.from} to ${m.to} in a batch from ${b.fromMemberId} to ${this.opts.self.id}`,
            );
        }
        if (/^https?:\/\/[^\s]+$/.test(b.fromClientUrl)) this.clientUrls.set(b.fromMemberId, b.fromClientUrl);
        if (b.messages.length > 0) deliver(b.fromMemberId, b.messages);
        cb(null, { error: "" });
      },
      members: (call: ServerUnaryCall<MembersRequest, MembersResponse>, cb: sendUnaryData<MembersResponse>) => {
        this.opts.log.info(
          { asking: call.request.name.slice(0, 64) },
          "a joining scheduler member asked for the membership",
        );
        cb(null, { membership: this.opts.membership() });
      },
    };
  }

  close(): void {
    this.opts.runtime.clearInterval(this.helloTimer);
    for (const c of this.clients.values()) c.close();
  }
}
