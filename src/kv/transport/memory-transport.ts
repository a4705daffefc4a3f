import type { SnapshotChunk } from "../../proto/raft_serverpb.js";
import { RaftMessage } from "../../proto/raft_serverpb.js";
import { MessageType } from "../../proto/eraftpb.js";
import type { Logger } from "../../util/logger.js";
import { silentLogger } from "../../util/logger.js";
import { InvalidRaftMessageError, SnapshotSendError, DestinationUnreachableError } from "./errors.js";
import type { Envelope, MessageFilter } from "./filters.js";
import type { Rng } from "../../util/random.js";
import { mulberry32, randomSeed } from "../../util/random.js";
import type { Runtime, TimerHandle } from "../../util/runtime.js";
import { realRuntime } from "../../util/runtime.js";
import { copyRaftMessage } from "./message-copy.js";
import { SNAPSHOT_CHUNK_BYTES, snapshotChunks } from "./snapshot-chunks.js";
import type { RaftMessageSink, RaftTransport, SnapshotSource, TransportEvents } from "./transport.js";

export type MessageCopy = "wire" | "clone" | "none";

export interface MemoryNetworkOptions {
  /** PRNG seed for the filters; printed via `seed` so a failing run replays. Random if absent. */
  seed?: number;
  /** Max bytes per snapshot data chunk (default 1 MiB, as TinyKV). */
  snapshotChunkBytes?: number;
  /**
   * What each receiver gets: "wire" (default) an encode and decode, as the wire would give, which
   * also proves every message encodes; "clone" a deep copy, the same objects for a fraction of
   * the cost (the simulator); "none" the sender's own object.
   */
  messageCopy?: MessageCopy;
  log?: Logger;
  /**
   * The clock and timers deliveries are scheduled on (default: the real ones). A simulation passes
   * its virtual runtime; without a `seed`, the filters' seed is then drawn from it.
   */
  runtime?: Runtime;
}

export interface MemoryNetworkStats {
  sent: number;
  delivered: number;
  /** Dropped by a filter, or the receiver was not registered at send or delivery time. */
  dropped: number;
  duplicated: number;
  snapshotsOk: number;
  snapshotsFailed: number;
  /** A receiver's onRaftMessage threw (a receiver bug; logged at error). */
  sinkErrors: number;
}

interface Pending {
  at: number;
  run: () => void;
}

/** Ordered deliveries from one store to another: a FIFO drained by one timer. */
interface Link {
  queue: Pending[];
  lastAt: number;
  armed: boolean;
}

/**
 * An in-process network of stores for tests: asynchronous delivery (never on the sender's stack),
 * composable filters (see filters.ts) and a seeded PRNG. Sends to an unregistered store, and
 * messages a filter drops, are reported to the sender as unreachable.
 */
export class MemoryNetwork {
  readonly seed: number;
  readonly stats: MemoryNetworkStats = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    snapshotsOk: 0,
    snapshotsFailed: 0,
    sinkErrors: 0,
  };
  private readonly rng: Rng;
  private readonly sinks = new Map<bigint, RaftMessageSink>();
  private filters: MessageFilter[] = [];
  private readonly links = new Map<string, Link>();
  /** Pending delayed deliveries; deferred ones check `closed` when they run instead. */
  private readonly timers = new Set<TimerHandle>();
  /** @internal The transports defer their flushes on it too. */
  readonly runtime: Runtime;
  private readonly chunkBytes: number;
  private readonly messageCopy: MessageCopy;
  private readonly log: Logger;
  private closed = false;

  constructor(opts: MemoryNetworkOptions = {}) {
    this.runtime = opts.runtime ?? realRuntime;
    this.seed = opts.seed ?? (opts.runtime ? Math.floor(opts.runtime.random() * 0xffffffff) >>> 0 : randomSeed());
    this.rng = mulberry32(this.seed);
    this.chunkBytes = opts.snapshotChunkBytes ?? SNAPSHOT_CHUNK_BYTES;
    this.messageCopy = opts.messageCopy ?? "wire";
    this.log = opts.log ?? silentLogger;
  }

  /** A store is up: messages to it are delivered to `sink`. Re-registering replaces the sink (a restart). */
  register(storeId: bigint, sink: RaftMessageSink): void {
    this.sinks.set(storeId, sink);
  }

  /** A store is down: sends to it fail, in-flight messages and snapshots to it are lost. */
  unregister(storeId: bigint): void {
    this.sinks.delete(storeId);
  }

  isRegistered(storeId: bigint): boolean {
    return this.sinks.has(storeId);
  }

  /** The transport a store uses to send; events go to that store's raft. */
  transport(storeId: bigint, snapshotSource: SnapshotSource, events: TransportEvents = {}): RaftTransport {
    return new MemoryTransport(this, storeId, snapshotSource, events);
  }

  /** Adds a filter; returns a function that removes just this one. */
  addFilter(filter: MessageFilter): () => void {
    this.filters.push(filter);
    return () => {
      this.filters = this.filters.filter((f) => f !== filter);
    };
  }

  clearFilters(): void {
    this.filters = [];
  }

  /** Cancels every pending delivery (test teardown). */
  close(): void {
    this.closed = true;
    for (const t of this.timers) this.runtime.clearTimeout(t);
    this.timers.clear();
    this.links.clear();
  }

  toString(): string {
    return `MemoryNetwork(seed=${this.seed})`;
  }

  /**
   * @internal Called by MemoryTransport for each queued message. `direct`: the sender flushed
   * explicitly (the store loop, once a turn), so a message without delay may reach its receiver
   * in a microtask of the sender's macrotask rather than in a later one; a send flushed on its
   * own (a reply from a receiver's inbox, say) always waits a macrotask, so two stores can never
   * answer each other in a loop of microtasks that no clock or event queue sees.
   */
  route(from: bigint, msg: RaftMessage, source: SnapshotSource, events: TransportEvents, direct = false): void {
    const to = msg.toPeer?.storeId;
    if (to === undefined) throw new InvalidRaftMessageError(`region ${msg.regionId}: no to_peer`);
    this.stats.sent++;
    const env: Envelope = {
      msg,
      from,
      to,
      isSnapshot: msg.message?.msgType === MessageType.MsgSnapshot,
      delayMs: 0,
      unordered: false,
      copies: 1,
    };
    const passed = !this.closed && this.sinks.has(to) && this.filters.every((f) => f(env, this.rng));
    if (!passed) {
      this.stats.dropped++;
      if (env.isSnapshot) this.snapshotDone(events, msg, false);
      else notify(() => events.onUnreachable?.(msg));
      return;
    }
    if (env.isSnapshot) {
      this.schedule(env.delayMs, () => this.deliverSnapshot(env, source, events));
      return;
    }
    let wire: Uint8Array | undefined;
    if (this.messageCopy === "wire") {
      try {
        wire = RaftMessage.encode(msg).finish();
      } catch (err) {
        // The real wire would fail the same way; the sender's raft retries, the bug is logged.
        this.log.error({ err, from_store: from, to_store: to }, "raft message does not encode");
        this.stats.dropped++;
        notify(() => events.onUnreachable?.(msg));
        return;
      }
    }
    if (env.copies > 1) this.stats.duplicated += env.copies - 1;
    const linkKey = env.unordered ? "" : `${from}->${to}`;
    for (let i = 0; i < env.copies; i++) {
      const copy = wire ? RaftMessage.decode(wire) : this.messageCopy === "clone" ? copyRaftMessage(msg) : msg;
      const run = () => this.deliver(to, copy, msg, events);
      if (env.unordered) this.schedule(env.delayMs, run);
      else this.enqueueOrdered(linkKey, env.delayMs, run, direct);
    }
  }

  private deliver(to: bigint, copy: RaftMessage, original: RaftMessage, events: TransportEvents): void {
    const sink = this.sinks.get(to);
    if (!sink) {
      this.stats.dropped++;
      notify(() => events.onUnreachable?.(original));
      return;
    }
    this.stats.delivered++;
    try {
      sink.onRaftMessage(copy);
    } catch (err) {
      this.stats.sinkErrors++;
      this.log.error({ err, to_store: to, region_id: copy.regionId }, "receiver's onRaftMessage threw");
    }
  }

  private deliverSnapshot(env: Envelope, source: SnapshotSource, events: TransportEvents): void {
    const sink = this.sinks.get(env.to);
    if (!sink) {
      this.snapshotDone(events, env.msg, false);
      return;
    }
    const chunks = this.guardedChunks(env, sink, snapshotChunks(env.msg, source, this.chunkBytes));
    sink.onSnapshot(chunks).then(
      () => this.snapshotDone(events, env.msg, true),
      (err: unknown) => {
        this.log.warn({ err: new SnapshotSendError(env.to, env.msg.regionId, err) }, "snapshot failed");
        this.snapshotDone(events, env.msg, false);
      },
    );
  }

  /** Fails the stream if the receiver stops (unregisters or is replaced) mid-snapshot. */
  private async *guardedChunks(
    env: Envelope,
    sink: RaftMessageSink,
    inner: AsyncIterable<SnapshotChunk>,
  ): AsyncGenerator<SnapshotChunk> {
    for await (const chunk of inner) {
      if (this.closed || this.sinks.get(env.to) !== sink)
        throw new DestinationUnreachableError(env.to, undefined, "store stopped during a snapshot");
      yield chunk;
    }
  }

  private snapshotDone(events: TransportEvents, msg: RaftMessage, ok: boolean): void {
    if (ok) this.stats.snapshotsOk++;
    else this.stats.snapshotsFailed++;
    notify(() => events.onSnapshotStatus?.(msg, ok));
  }

  private schedule(delayMs: number, run: () => void): void {
    if (this.closed) return;
    if (delayMs <= 0) {
      this.runtime.defer(() => {
        if (!this.closed) run();
      });
    } else {
      const h = this.runtime.setTimeout(() => {
        this.timers.delete(h);
        run();
      }, delayMs);
      this.timers.add(h);
    }
  }

  private enqueueOrdered(key: string, delayMs: number, run: () => void, direct: boolean): void {
    let link = this.links.get(key);
    if (!link) {
      link = { queue: [], lastAt: 0, armed: false };
      this.links.set(key, link);
    }
    const now = this.runtime.now();
    const at = Math.max(now + delayMs, link.lastAt);
    link.lastAt = at;
    if (direct && at <= now && link.queue.length === 0) {
      // Nothing ahead of it on the link: in a microtask, in order with the link's other direct ones.
      queueMicrotask(() => {
        if (!this.closed) run();
      });
      return;
    }
    link.queue.push({ at, run });
    this.armLink(link);
  }

  private armLink(link: Link): void {
    const head = link.queue[0];
    if (link.armed || !head) return;
    link.armed = true;
    this.schedule(head.at - this.runtime.now(), () => {
      link.armed = false;
      const now = this.runtime.now();
      // Run everything due, in order; 1 ms of slack matches timer granularity.
      while (link.queue.length > 0 && link.queue[0]!.at <= now + 1) link.queue.shift()!.run();
      this.armLink(link);
    });
  }
}

/** Calls a user callback outside the caller's stack; a throwing callback is a bug, so it surfaces. */
function notify(fn: () => void): void {
  queueMicrotask(fn);
}

/** One store's view of a MemoryNetwork: queues sends, routes them on flush (or in a microtask after the first send). */
class MemoryTransport implements RaftTransport {
  private queue: RaftMessage[] = [];
  /** A flush is queued as a microtask (which cannot be cancelled: it checks this flag instead). */
  private flushPending = false;
  private closed = false;
  /** The store's callbacks, silenced once it closed (its raft is gone). */
  private readonly events: TransportEvents;

  constructor(
    private readonly network: MemoryNetwork,
    private readonly storeId: bigint,
    private readonly snapshotSource: SnapshotSource,
    events: TransportEvents,
  ) {
    this.events = {
      onUnreachable: (msg) => {
        if (!this.closed) events.onUnreachable?.(msg);
      },
      onSnapshotStatus: (msg, ok) => {
        if (!this.closed) events.onSnapshotStatus?.(msg, ok);
      },
    };
  }

  send(msg: RaftMessage): void {
    if (msg.toPeer === undefined) throw new InvalidRaftMessageError(`region ${msg.regionId}: no to_peer`);
    if (this.closed) return; // a closed store's raft is gone: nobody to tell
    this.queue.push(msg);
    if (this.flushPending) return;
    this.flushPending = true;
    // A microtask, not a deferral: the store loop flushes at once after its sends, and a deferral
    // would be one more (empty) event of the simulation's queue per turn.
    queueMicrotask(() => {
      if (this.flushPending) this.route(false);
    });
  }

  flush(): void {
    this.route(true);
  }

  private route(direct: boolean): void {
    this.flushPending = false;
    const batch = this.queue;
    this.queue = [];
    for (const msg of batch) this.network.route(this.storeId, msg, this.snapshotSource, this.events, direct);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.flushPending = false;
    this.queue = []; // the store is stopping; its unsent messages are lost as in a crash
  }
}
