import type { RaftMessage } from "../../proto/raft_serverpb.js";
import { TransportError } from "./errors.js";

/**
 * One destination store of the gRPC raft transport as a small state machine. Its raft stream is
 *
 *   idle ──beginConnect──▶ connecting ──opened──▶ connected
 *     ▲                        │                     │
 *     │                  connectFailed          streamBroken
 *     │                        ▼                     │
 *     └──(wait elapsed)── backingOff ◀───────────────┘          any ──close──▶ closed
 *
 * and beside it the queue of messages waiting for a stream, bounded in count and bytes. Every
 * transition is a method here and does no I/O: it returns what the caller must report or close,
 * so the transport keeps the sockets and this file keeps the rules (and a unit test can walk them).
 * A backing-off destination whose wait has elapsed behaves as idle: the next flush reconnects.
 */

export interface QueuedMessage {
  msg: RaftMessage;
  /** Upper bound of its encoded size. */
  size: number;
}

/** The open stream to a destination (gRPC may still be dialing under it) and what was written on it. */
export interface StreamLink<Stream, Client> {
  readonly client: Client;
  readonly stream: Stream;
  /** Settles when the stream's final callback fired. */
  readonly done: Promise<void>;
  readonly openedAt: number;
  /** Waiting for 'drain' or for in-flight bytes to complete before writing more. */
  blocked: boolean;
  /** A 'drain' listener is registered (one at a time: a write callback may unblock the stream first). */
  awaitingDrain: boolean;
  /** Bytes written on this stream whose write has not completed. */
  inFlightBytes: number;
  /** One message per (region, to-peer) written on this stream: reported unreachable if it breaks. */
  readonly inFlight: Map<string, RaftMessage>;
}

export type LinkState<Stream, Client> =
  | { readonly kind: "idle" }
  | { readonly kind: "connecting"; readonly since: number }
  | ({ readonly kind: "connected" } & StreamLink<Stream, Client>)
  | { readonly kind: "backingOff"; readonly until: number }
  | { readonly kind: "closed" };

export type LinkStateKind = LinkState<unknown, unknown>["kind"];

/** A transition the state machine does not allow from the state it is in (a transport bug). */
export class InvalidLinkTransitionError extends TransportError {
  constructor(
    readonly storeId: bigint,
    readonly from: LinkStateKind,
    readonly transition: string,
  ) {
    super(`store ${storeId}: raft stream transition ${transition} is not allowed from ${from}`);
    this.name = "InvalidLinkTransitionError";
  }
}

/**
 * Capped exponential reconnect backoff with jitter: each wait is the current step scaled by a
 * random factor in [0.5, 1), then the step doubles up to the cap. The randomness is injected so a
 * simulation replays the same waits.
 */
export class ReconnectBackoff {
  private stepMs: number;

  constructor(
    readonly initialMs: number,
    readonly maxMs: number,
  ) {
    this.stepMs = initialMs;
  }

  /** No failure since the last reset (the next failure is the first worth a warning). */
  get atFirstStep(): boolean {
    return this.stepMs === this.initialMs;
  }

  next(random: () => number): number {
    const wait = Math.round(this.stepMs * (0.5 + random() / 2));
    this.stepMs = Math.min(this.stepMs * 2, this.maxMs);
    return wait;
  }

  reset(): void {
    this.stepMs = this.initialMs;
  }
}

/** What a failure lost, for the caller to report unreachable and log. */
export interface LinkFailure<Client> {
  /** The failed stream's client, to close (none when connecting failed). */
  client: Client | undefined;
  /** Messages written on the failed stream, one per (region, to-peer). */
  inFlight: RaftMessage[];
  /** Messages still queued, dropped with it. */
  queued: QueuedMessage[];
  waitMs: number;
  /** The first failure since a healthy stream (later ones are only worth a debug line). */
  firstFailure: boolean;
}

export interface QueueBounds {
  maxMessages: number;
  maxBytes: number;
}

export class Destination<Stream, Client> {
  addr: string | undefined;
  lastOversizeWarning = 0;
  /** The queue hit its bound since it last drained (warned once per episode). */
  overflowing = false;
  snapshotsActive = 0;
  /** Took a raft-over-TCP connection but not the wire: dialed over gRPC until that stream breaks. */
  refusesTcp = false;
  readonly snapshotWaiters: Array<() => void> = [];
  private link: LinkState<Stream, Client> = { kind: "idle" };
  private queue: QueuedMessage[] = [];
  private bytes = 0;

  constructor(
    readonly storeId: bigint,
    private readonly backoff: ReconnectBackoff,
  ) {}

  get state(): LinkState<Stream, Client> {
    return this.link;
  }

  /** Backing off and the wait has not elapsed: sends are dropped (reported) instead of queued. */
  isBackingOff(now: number): boolean {
    return this.link.kind === "backingOff" && now < this.link.until;
  }

  /** Nothing is connected or connecting, and the backoff (if any) has elapsed. */
  canConnect(now: number): boolean {
    return this.link.kind === "idle" || (this.link.kind === "backingOff" && now >= this.link.until);
  }

  /** The current stream's link if `stream` is it (callbacks of a replaced stream are ignored). */
  linkOf(stream: Stream): StreamLink<Stream, Client> | undefined {
    return this.link.kind === "connected" && this.link.stream === stream ? this.link : undefined;
  }

  // ---- transitions ----

  beginConnect(now: number): void {
    if (!this.canConnect(now)) throw new InvalidLinkTransitionError(this.storeId, this.link.kind, "beginConnect");
    this.link = { kind: "connecting", since: now };
  }

  /** The stream exists. False if the destination was closed meanwhile (the caller closes what it opened). */
  opened(open: { client: Client; stream: Stream; done: Promise<void> }, now: number): boolean {
    if (this.link.kind === "closed") return false;
    if (this.link.kind !== "connecting") throw new InvalidLinkTransitionError(this.storeId, this.link.kind, "opened");
    this.link = {
      kind: "connected",
      ...open,
      openedAt: now,
      blocked: false,
      awaitingDrain: false,
      inFlightBytes: 0,
      inFlight: new Map(),
    };
    return true;
  }

  /** Resolving or dialing failed. Undefined if the destination was closed meanwhile. */
  connectFailed(now: number, random: () => number): LinkFailure<Client> | undefined {
    if (this.link.kind === "closed") return undefined;
    if (this.link.kind !== "connecting")
      throw new InvalidLinkTransitionError(this.storeId, this.link.kind, "connectFailed");
    return this.backOff(undefined, [], now, random);
  }

  /**
   * `stream` failed or ended. Undefined if it is not the current stream (its callback and 'error'
   * event both report one failure) or the destination is closed.
   */
  streamBroken(stream: Stream, now: number, random: () => number): LinkFailure<Client> | undefined {
    const link = this.linkOf(stream);
    if (!link) return undefined;
    // A stream that stayed up longer than the longest wait was healthy: start the backoff over.
    if (now - link.openedAt >= this.backoff.maxMs) this.backoff.reset();
    return this.backOff(link.client, [...link.inFlight.values()], now, random);
  }

  /** Stops for good: returns the open stream (to end) and drops the queue, as a crash would. */
  close(): StreamLink<Stream, Client> | undefined {
    const link = this.link.kind === "connected" ? this.link : undefined;
    this.link = { kind: "closed" };
    this.queue = [];
    this.bytes = 0;
    return link;
  }

  private backOff(
    client: Client | undefined,
    inFlight: RaftMessage[],
    now: number,
    random: () => number,
  ): LinkFailure<Client> {
    const firstFailure = this.backoff.atFirstStep;
    const waitMs = this.backoff.next(random);
    this.link = { kind: "backingOff", until: now + waitMs };
    this.addr = undefined; // the store may have moved: resolve again on the next attempt
    return { client, inFlight, queued: this.takeQueued(), waitMs, firstFailure };
  }

  // ---- the queue ----

  get queuedBytes(): number {
    return this.bytes;
  }

  get queueLength(): number {
    return this.queue.length;
  }

  peek(): QueuedMessage | undefined {
    return this.queue[0];
  }

  shift(): QueuedMessage | undefined {
    const m = this.queue.shift();
    if (m) this.bytes -= m.size;
    return m;
  }

  /** Queues `parts`, then drops the oldest beyond the bounds (always keeping the newest); returns the dropped. */
  enqueue(parts: readonly QueuedMessage[], bounds: QueueBounds): QueuedMessage[] {
    for (const part of parts) {
      this.queue.push(part);
      this.bytes += part.size;
    }
    const dropped: QueuedMessage[] = [];
    while (this.queue.length > bounds.maxMessages || (this.bytes > bounds.maxBytes && this.queue.length > 1)) {
      dropped.push(this.shift()!);
    }
    return dropped;
  }

  /** Empties the queue and returns what was in it. */
  takeQueued(): QueuedMessage[] {
    const queued = this.queue;
    this.queue = [];
    this.bytes = 0;
    return queued;
  }
}
