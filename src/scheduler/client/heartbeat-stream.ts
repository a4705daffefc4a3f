import type { ClientDuplexStream } from "@grpc/grpc-js";
import type { RegionHeartbeatResponse } from "../../proto/schedulerpb.js";
import { ErrorType, RegionHeartbeatRequest } from "../../proto/schedulerpb.js";
import type { Logger } from "../../util/logger.js";
import type { Runtime } from "../../util/runtime.js";

type HeartbeatDuplex = ClientDuplexStream<RegionHeartbeatRequest, RegionHeartbeatResponse>;

/** What the stream tells its owner, who knows the scheduler members and finds the leader. */
export interface HeartbeatStreamEvents {
  /** The member answered NOT_LEADER. */
  notLeader: () => void;
  /** The stream failed or ended (its member may have stopped leading); it re-opens on a later send. */
  ended: () => void;
}

/**
 * Client side of the RegionHeartbeat bidi stream: every heartbeat goes out on one shared stream,
 * opened on demand, and the scheduler's commands (and errors) coming back go to the registered
 * handlers. After a stream error the stream is re-opened on a later send, with exponential backoff
 * (max 5 s); heartbeats sent while backing off are dropped (leaders send them periodically anyway).
 */
export class RegionHeartbeatStream {
  private readonly handlers = new Set<(resp: RegionHeartbeatResponse) => void>();
  private stream: HeartbeatDuplex | undefined;
  private backoffMs = 0;
  private nextOpenAt = 0;
  private closed = false;

  constructor(
    private readonly open: () => HeartbeatDuplex,
    private readonly clusterId: bigint,
    private readonly opts: { runtime: Runtime; log: Logger },
    private readonly events: HeartbeatStreamEvents,
  ) {}

  /** Sends one heartbeat; returns whether it was sent (false while closed or backing off). */
  send(req: Omit<RegionHeartbeatRequest, "header"> | RegionHeartbeatRequest): boolean {
    if (this.closed) return false;
    if (!this.stream) {
      if (this.opts.runtime.now() < this.nextOpenAt) return false;
      this.openStream();
    }
    this.stream!.write(RegionHeartbeatRequest.create({ ...req, header: { clusterId: this.clusterId } }));
    return true;
  }

  /** Registers a handler for scheduler commands (and errors) arriving on the stream; returns its removal. */
  onResponse(handler: (resp: RegionHeartbeatResponse) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  private openStream(): void {
    const stream = this.open();
    this.stream = stream;
    stream.on("data", (resp: RegionHeartbeatResponse) => {
      if (resp.header?.error?.type === ErrorType.NOT_LEADER) {
        this.events.notLeader();
        return;
      }
      this.backoffMs = 0;
      for (const h of this.handlers) {
        try {
          h(resp);
        } catch (err) {
          this.opts.log.warn({ err }, "region heartbeat response handler threw");
        }
      }
    });
    const drop = (err?: Error) => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      this.backoffMs = Math.min(5000, this.backoffMs === 0 ? 100 : this.backoffMs * 2);
      this.nextOpenAt = this.opts.runtime.now() + this.backoffMs;
      if (err && !this.closed)
        this.opts.log.warn({ err: err.message, retry_in_ms: this.backoffMs }, "region heartbeat stream failed");
      if (!this.closed) this.events.ended();
    };
    stream.on("error", (err) => drop(err));
    stream.on("end", () => drop());
  }

  /** Drops the stream (the scheduler leader moved) without backing off: the next send opens anew. */
  resetStream(): void {
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
  }

  close(): void {
    this.closed = true;
    this.resetStream();
  }
}
