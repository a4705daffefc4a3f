/**
 * `KvClient.watch`: the committed changes of a key range as an async iterator, in commit order,
 * exactly once, across region splits and leader changes. One cdcpb.ChangeData/EventFeed stream
 * per region; WatchMerger orders their rows by the regions' resolved ts.
 */
import { FeedQueue } from "./feed-queue.js";
import type { ChangeDataEvent, Error as CdcError, Event_Row } from "../proto/cdcpb.js";
import { ChangeDataClient, ChangeDataRequest, Event_LogType, Event_Row_OpType } from "../proto/cdcpb.js";
import type { TlsConfig } from "../util/tls.js";
import { grpcChannelCredentials } from "../util/tls.js";
import type { Transaction } from "./txn.js";
import type { Bytes } from "./txn.js";
import { toBuf } from "./txn.js";
import type { Error as RegionErrorPb } from "../proto/errorpb.js";
import type { Region } from "../proto/metapb.js";
import type { Logger } from "../util/logger.js";
import type { Runtime, TimerHandle } from "../util/runtime.js";
import { errorMessage } from "../util/retry.js";
import type { RegionCache, RpcTarget } from "./region-cache.js";
import type { RetryPolicy } from "./request.js";
import { Backoff } from "./request.js";
import { KvClientClosedError } from "./errors.js";
import type { WatchChange, WatchEvent, WatchPosition, WatchSpan } from "./watch-merge.js";
import { WatchMerger } from "./watch-merge.js";

export type { WatchChange, WatchEvent, WatchPosition, WatchResolved } from "./watch-merge.js";

export interface WatchOptions {
  /** Deliver changes committed after this ts (default: a fresh ts, i.e. from now on). */
  fromTs?: bigint;
  /** With fromTs: resume after the change (fromTs, afterKey), the position of the last change consumed. */
  afterKey?: Buffer;
  /** How long a part of the range may stay unsubscribed (retrying) before the watch fails. Default: the client's deadline. */
  reconnectDeadlineMs?: number;
  /**
   * Events held for a consumer that does not keep up. Past it the watch drops its feeds (and
   * what they sent above their resolved ts) and resubscribes once the consumer has read half of
   * them: memory stays bounded, nothing is lost or repeated. Default 4096.
   */
  highWaterMark?: number;
}

export interface WatchDeps {
  cache: RegionCache;
  policy: RetryPolicy;
  runtime: Runtime;
  log: Logger;
  tso(): Promise<bigint>;
  /** The ChangeData client of a store address (shared, closed by the KvClient). */
  changeData(addr: string): ChangeDataClient;
  /** Reads [start, end) at a fresh ts, resolving the locks it meets (a stalled resolved ts). */
  resolveLocks(start: Buffer, end: Buffer): Promise<void>;
  /** The watch is open (`stop` ends it, e.g. when the client closes) / it ended. */
  opened?(w: { stop(): void }): void;
  ended?(w: { stop(): void }): void;
}

/** How long the watch's resolved ts may stand still before it resolves the locks of its slowest span, ms. */
const STALL_MS = 2000;

/** The keys starting with `prefix`: [prefix, the next key after every such key) (empty end: no bound). */
export function prefixRange(prefix: Buffer): { start: Buffer; end: Buffer } {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return { start: Buffer.from(prefix), end: end.subarray(0, i + 1) };
    }
  }
  return { start: Buffer.from(prefix), end: Buffer.alloc(0) };
}

/** The range a watch of `range` covers: a prefix (string or bytes) or [start, end). */
export function watchRange(range: Bytes | { start: Bytes; end: Bytes }): { start: Buffer; end: Buffer } {
  if (typeof range === "string" || range instanceof Uint8Array) return prefixRange(toBuf(range));
  return { start: toBuf(range.start), end: toBuf(range.end) };
}

/** One ChangeData client per store address (the KvClient's, closed with it). */
export class ChangeDataConnections {
  private readonly clients = new Map<string, ChangeDataClient>();
  private closed = false;
  constructor(private readonly tls: TlsConfig | undefined) {}

  get(addr: string): ChangeDataClient {
    if (this.closed) throw new KvClientClosedError();
    let c = this.clients.get(addr);
    if (!c) {
      c = new ChangeDataClient(addr, grpcChannelCredentials(this.tls), { "grpc.enable_channelz": 0 });
      this.clients.set(addr, c);
    }
    return c;
  }

  close(): void {
    this.closed = true;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

/** Reads every key of [start, end) at a fresh ts: the reads resolve the locks they meet. */
export async function readAllAt(
  snapshotAt: (ts: bigint) => Transaction,
  ts: Promise<bigint>,
  start: Buffer,
  end: Buffer,
): Promise<void> {
  const page = 1024;
  const snapshot = snapshotAt(await ts);
  let cursor = start;
  for (;;) {
    const got = await snapshot.scan(cursor, end, page);
    if (got.length < page) return;
    cursor = Buffer.concat([got[got.length - 1]!.key, Buffer.from([0])]);
  }
}

/** How one region's feed ended. */
type FeedEnd = { error?: CdcError; transport?: unknown; progressed: boolean; shed?: boolean };

function changeOf(row: Event_Row): WatchChange | undefined {
  const base = { key: row.key, commitTs: row.commitTs, startTs: row.startTs };
  if (row.opType === Event_Row_OpType.PUT) return { type: "put", ...base, value: row.value };
  if (row.opType === Event_Row_OpType.DELETE) return { type: "delete", ...base };
  return undefined;
}

/** The feed's error as the region error the cache understands. */
export function regionErrorOf(e: CdcError): RegionErrorPb {
  return {
    message: e.message,
    notLeader: e.notLeader,
    regionNotFound: e.regionNotFound,
    epochNotMatch: e.epochNotMatch,
    keyNotInRegion: undefined,
    staleCommand: undefined,
    storeNotMatch: undefined,
  };
}

/** True when the region ends before the span does. */
function endsBefore(region: Region, span: WatchSpan): boolean {
  if (region.endKey.length === 0) return false;
  return span.end.length === 0 || Buffer.compare(region.endKey, span.end) < 0;
}

export class Watch implements AsyncIterableIterator<WatchEvent> {
  private merger: WatchMerger | undefined;
  private readonly queue: FeedQueue<WatchEvent>;
  private started = false;
  private nextRequestId = 1n;
  private lastProgressAt = 0;
  private stallTimer: TimerHandle | undefined;
  private resolvingLocks = false;

  constructor(
    private readonly deps: WatchDeps,
    private readonly range: { start: Buffer; end: Buffer },
    private readonly opts: WatchOptions,
  ) {
    this.queue = new FeedQueue(opts.highWaterMark ?? 4096, () => deps.ended?.(this));
    deps.opened?.(this);
  }

  /** Times the watch dropped its feeds for a consumer that did not keep up. */
  get sheds(): number {
    return this.queue.sheds;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<WatchEvent>> {
    if (!this.started) await this.start();
    const ev = await this.queue.take();
    return ev === undefined ? { value: undefined, done: true } : { value: ev, done: false };
  }

  async return(): Promise<IteratorResult<WatchEvent>> {
    this.stop();
    return { value: undefined, done: true };
  }

  /** Ends the watch: every feed is cancelled; a pending next() ends the iteration. */
  stop(): void {
    this.queue.stop();
    this.deps.runtime.clearInterval(this.stallTimer);
  }

  private async start(): Promise<void> {
    this.started = true;
    let ts: bigint;
    try {
      ts = this.opts.fromTs ?? (await this.deps.tso());
    } catch (err) {
      // No feed runs: the watch fails (this next() throws it) rather than wait for nothing.
      return this.fail(err);
    }
    if (this.queue.over) return; // stopped while the TSO answered: no timer, no feed
    const from: WatchPosition = { ts, afterKey: this.opts.afterKey };
    this.merger = new WatchMerger(from);
    const span: WatchSpan = { start: this.range.start, end: this.range.end, resolved: this.merger.checkpoint };
    this.merger.addSpan(span);
    this.lastProgressAt = this.deps.runtime.now();
    this.stallTimer = this.deps.runtime.setInterval(() => this.checkStall(), STALL_MS / 2);
    void this.runSpan(span);
  }

  private emit(events: WatchEvent[]): void {
    if (events.length === 0 || this.queue.stopped) return;
    this.lastProgressAt = this.deps.runtime.now();
    this.queue.push(...events);
  }

  private fail(err: unknown): void {
    if (this.queue.over) return;
    this.queue.fail(err);
    this.deps.runtime.clearInterval(this.stallTimer);
  }

  /**
   * A txn that prewrote and went away leaves locks that hold the resolved ts (and so every change
   * after it) back until somebody resolves them. When nothing was released for a while, read the
   * slowest span: the read resolves the locks it meets (rolled back or committed by their primary).
   */
  private checkStall(): void {
    const merger = this.merger;
    if (!merger || this.resolvingLocks || this.deps.runtime.now() - this.lastProgressAt < STALL_MS) return;
    const span = merger.slowestSpan();
    if (!span) return;
    this.resolvingLocks = true;
    this.deps
      .resolveLocks(span.start, span.end)
      .catch((err: unknown) => {
        // A live lock or a busy region: the next check tries again.
        this.deps.log.debug({ err: errorMessage(err) }, "watch: resolving stalled locks failed");
      })
      .finally(() => {
        this.resolvingLocks = false;
      });
  }

  /** Keeps one span subscribed until the watch stops: re-resolves its region after every end, with backoff. */
  private async runSpan(first: WatchSpan): Promise<void> {
    let span = first;
    const merger = this.merger!;
    let bo: Backoff | undefined;
    while (!this.queue.over) {
      let lastError: unknown;
      let fast = false;
      await this.queue.room();
      if (this.queue.over) return;
      try {
        const cached = await this.deps.cache.locate(span.start);
        if (endsBefore(cached.region, span)) {
          // The span spans two regions now (a split): the part past this region gets its own feed.
          const left = { start: span.start, end: cached.region.endKey, resolved: span.resolved };
          const right = { start: cached.region.endKey, end: span.end, resolved: span.resolved };
          merger.splitSpan(span, [left, right]);
          void this.runSpan(right);
          span = left;
        }
        const target = await this.deps.cache.targetOf(cached);
        const end = await this.feed(span, target);
        if (end.progressed) bo = undefined;
        if (this.queue.stopped) return;
        if (end.shed) {
          // Dropped for a slow consumer, not for a fault: resume without a backoff.
          merger.resetSpan(span);
          continue;
        }
        if (end.error) {
          lastError = new Error(`watch feed of region ${target.region.id} ended: ${end.error.message}`);
          fast = end.error.serverIsBusy ? false : this.deps.cache.onRegionError(target, regionErrorOf(end.error));
        } else {
          lastError = end.transport ?? new Error(`the feed of region ${target.region.id} at ${target.addr} ended`);
          this.deps.cache.onSendFail(target);
        }
      } catch (err) {
        lastError = err;
      }
      merger.resetSpan(span);
      this.deps.log.debug({ err: errorMessage(lastError), start: span.start.toString("hex") }, "watch: resubscribing");
      const policy = { ...this.deps.policy, deadlineMs: this.opts.reconnectDeadlineMs ?? this.deps.policy.deadlineMs };
      bo ??= new Backoff("watch", span.start, policy, this.deps.runtime);
      try {
        await bo.retry(lastError, fast);
      } catch (err) {
        return this.fail(err);
      }
    }
  }

  /** One EventFeed call for the span on the region's leader, until it ends. */
  private feed(span: WatchSpan, target: RpcTarget): Promise<FeedEnd> {
    const merger = this.merger!;
    const req = ChangeDataRequest.fromPartial({
      regionId: target.region.id,
      regionEpoch: target.region.regionEpoch,
      checkpointTs: span.resolved,
      startKey: span.start,
      endKey: span.end,
      requestId: this.nextRequestId++,
    });
    return new Promise((resolve) => {
      const call = this.deps.changeData(target.addr).eventFeed(req);
      this.queue.track(call);
      const end: FeedEnd = { progressed: false };
      let settled = false;
      const settle = () => {
        if (settled) return;
        settled = true;
        this.queue.untrack(call);
        resolve(end);
      };
      call.on("data", (msg: ChangeDataEvent) => {
        for (const ev of msg.events) {
          if (settled) return;
          if (ev.error) {
            end.error = ev.error;
            call.cancel();
            return settle();
          }
          for (const row of ev.entries?.entries ?? []) {
            if (row.type === Event_LogType.INITIALIZED) end.progressed = true;
            const change = changeOf(row);
            if (change) merger.add(span, change);
          }
          if (ev.resolvedTs !== undefined) {
            end.progressed = true;
            this.emit(merger.resolve(span, ev.resolvedTs));
          }
        }
      });
      call.on("error", (err: unknown) => {
        if (this.queue.wasShed(call)) end.shed = true;
        end.transport ??= err;
        settle();
      });
      call.on("end", settle);
    });
  }
}
