/**
 * `KvClient.watchRaw`: the changes of raw keys (client CF `default`) as an async iterator. Raw
 * writes carry no timestamp, so there is no order across regions: each region's changes come in
 * its raft-log order, exactly once, each with its (region id, raft index) position. One
 * cdcpb.ChangeData/EventFeed stream (kv_api = RawKV) per part of the range ("span"), each
 * following one region by id. A split ends a span's feed at the split's index; its parts go on in
 * the regions the split made (the new one from the start of its log); a lost leader, a store
 * gone or a slow consumer: the span resubscribes from the last index it received.
 */
import { FeedQueue } from "./feed-queue.js";
import type { ChangeDataEvent, Error as CdcError } from "../proto/cdcpb.js";
import { ChangeDataRequest, ChangeDataRequest_KvAPI, Event_LogType, Event_Row_OpType } from "../proto/cdcpb.js";
import type { Region } from "../proto/metapb.js";
// A protocol fact, not raftstore internals: a region a split creates has applied this index before its first entry.
import { RAFT_INIT_LOG_INDEX } from "../kv/raftstore/keys.js";
import { TinyKvError } from "../util/errors.js";
import { errorMessage } from "../util/retry.js";
import { PositionCompactedError } from "./errors.js";
import type { RpcTarget } from "./region-cache.js";
import { Backoff } from "./request.js";
import type { WatchDeps } from "./watch.js";
import { regionErrorOf } from "./watch.js";

/** Where a span is: [start, end) has every change of region `regionId` up to raft index `index`. */
export interface RawWatchPosition {
  /** 0: not placed yet (the span starts from now). */
  regionId: bigint;
  /** The last index consumed; 0: from now. */
  index: bigint;
  start: Buffer;
  /** Empty: no bound. */
  end: Buffer;
}

interface Where {
  regionId: bigint;
  index: bigint;
}

export type RawWatchEvent =
  | ({ type: "put"; key: Buffer; value: Buffer; expiresAtMs?: number } & Where)
  | ({ type: "delete"; key: Buffer } & Where)
  /** The region's stored changes after the start position are all delivered; live ones follow. */
  | ({ type: "initialized"; start: Buffer; end: Buffer } & Where)
  /**
   * With `resetOnCompacted`: the region no longer holds the changes of [start, end) after the
   * span's position; the span goes on from now. Changes in between are lost to the watch: re-read
   * the range (a scan) if it matters. `index` is the compacted position.
   */
  | ({ type: "reset"; start: Buffer; end: Buffer; oldestIndex: bigint } & Where);

export interface RawWatchOptions {
  /** Resume from `watch.positions()` of an earlier watch of the same range (default: from now). */
  from?: RawWatchPosition[];
  /** How long a span may stay unsubscribed (retrying) before the watch fails. Default: the client's deadline. */
  reconnectDeadlineMs?: number;
  /** Events held for a consumer that does not keep up before the feeds pause (resuming later from their index). Default 4096. */
  highWaterMark?: number;
  /**
   * A position the region's log no longer holds: by default the watch fails with
   * PositionCompactedError; with this, the span yields a `reset` event and goes on from now.
   */
  resetOnCompacted?: boolean;
}

/** A part of the range followed in one region; `index` is the last one received (queued). */
interface Span {
  start: Buffer;
  end: Buffer;
  regionId: bigint;
  index: bigint;
}

type Queued = { event: RawWatchEvent; span: Span } | { split: Span; parts: Array<{ span: Span; index: bigint }> };

type FeedEnd = { error?: CdcError; errorIndex: bigint; transport?: unknown; progressed: boolean; shed?: boolean };

/** A span's region no longer holds all of it where the span's position says it does: the watch cannot go on without a gap. */
export class RawWatchRangeError extends TinyKvError {
  constructor(span: Span, index: bigint) {
    super(
      `raw watch: region ${span.regionId} does not hold all of [${span.start.toString("hex")}, ${span.end.toString("hex")}) at index ${index}`,
      { context: { regionId: span.regionId } },
    );
  }
}

function overlap(span: Span, region: Region): { start: Buffer; end: Buffer } | undefined {
  const start = Buffer.compare(span.start, region.startKey) >= 0 ? span.start : region.startKey;
  let end = span.end;
  if (region.endKey.length > 0 && (end.length === 0 || Buffer.compare(region.endKey, end) < 0)) end = region.endKey;
  if (end.length > 0 && Buffer.compare(start, end) >= 0) return undefined;
  return { start, end };
}

export class RawWatch implements AsyncIterableIterator<RawWatchEvent> {
  private readonly queue: FeedQueue<Queued>;
  /** What the consumer has been handed, per span: the positions to resume from. */
  private readonly consumed = new Map<Span, bigint>();
  private started = false;
  private nextRequestId = 1n;

  constructor(
    private readonly deps: WatchDeps,
    private readonly range: { start: Buffer; end: Buffer },
    private readonly opts: RawWatchOptions,
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

  /** Where each part of the range is, as consumed so far: give it as `from` to resume without a gap or a repeat. */
  positions(): RawWatchPosition[] {
    if (!this.started) return (this.opts.from ?? [this.fresh(this.range.start, this.range.end)]).map((p) => ({ ...p }));
    return [...this.consumed]
      .map(([s, index]) => ({ regionId: s.regionId, index, start: s.start, end: s.end }))
      .sort((a, b) => Buffer.compare(a.start, b.start));
  }

  async next(): Promise<IteratorResult<RawWatchEvent>> {
    if (!this.started) this.start();
    for (;;) {
      const item = await this.queue.take();
      if (item === undefined) return { value: undefined, done: true };
      if ("split" in item) {
        this.consumed.delete(item.split);
        for (const p of item.parts) this.consumed.set(p.span, p.index);
        continue;
      }
      // A reset's index is the position that was lost: the span now starts from now.
      this.consumed.set(item.span, item.event.type === "reset" ? 0n : item.event.index);
      return { value: item.event, done: false };
    }
  }

  async return(): Promise<IteratorResult<RawWatchEvent>> {
    this.stop();
    return { value: undefined, done: true };
  }

  stop(): void {
    this.queue.stop();
  }

  private fresh(start: Buffer, end: Buffer): Span {
    return { start, end, regionId: 0n, index: 0n };
  }

  private start(): void {
    this.started = true;
    const spans = this.opts.from?.map((p) => ({ ...p })) ?? [this.fresh(this.range.start, this.range.end)];
    for (const span of spans) {
      this.consumed.set(span, span.index);
      void this.runSpan(span);
    }
  }

  /** Replaces `span` by `parts` (each with the index it starts after); the first goes on in the caller's loop. */
  private splitSpan(span: Span, parts: Span[]): Span {
    this.queue.push({ split: span, parts: parts.map((p) => ({ span: p, index: p.index })) });
    for (const p of parts.slice(1)) void this.runSpan(p);
    return parts[0]!;
  }

  /**
   * The parts of `span` in `regions`, each with the index it starts after: placing a span that
   * starts from now, every part from now; after a split at `index`, the region the span followed
   * from there and a region the split made from the start of its log. A part no listed region
   * covers starts from now if the span never had a position, and is an error if it had one.
   */
  private partsAfter(span: Span, regions: Region[], index: bigint, placing = false): Span[] {
    const parts: Span[] = [];
    for (const r of regions) {
      const o = overlap(span, r);
      const from = placing ? 0n : r.id === span.regionId ? index : RAFT_INIT_LOG_INDEX;
      if (o) parts.push({ ...o, regionId: r.id, index: from });
    }
    parts.sort((a, b) => Buffer.compare(a.start, b.start));
    const gaps: Span[] = [];
    let cursor: Buffer | undefined = span.start;
    for (const p of parts) {
      if (Buffer.compare(cursor, p.start) < 0) gaps.push(this.fresh(cursor, p.start));
      cursor = p.end.length === 0 ? undefined : p.end;
      if (!cursor) break;
    }
    if (cursor && (span.end.length === 0 || Buffer.compare(cursor, span.end) < 0))
      gaps.push(this.fresh(cursor, span.end));
    if (gaps.length > 0 && span.index !== 0n && !placing) throw new RawWatchRangeError(span, index);
    return [...parts, ...gaps].sort((a, b) => Buffer.compare(a.start, b.start));
  }

  /** Keeps one span subscribed until the watch stops: re-resolves its region after every end, with backoff. */
  private async runSpan(first: Span): Promise<void> {
    let span = first;
    let bo: Backoff | undefined;
    while (!this.queue.over) {
      let lastError: unknown;
      let fast = false;
      await this.queue.room();
      if (this.queue.over) return;
      try {
        if (span.regionId === 0n || span.index === 0n) {
          // From now: follow the region holding the span's start; the rest of the span gets its own feed.
          const cached = await this.deps.cache.locate(span.start);
          const parts = this.partsAfter(span, [cached.region], 0n, true);
          span = parts.length > 1 || parts[0]!.regionId !== span.regionId ? this.splitSpan(span, parts) : span;
        }
        const target = await this.deps.cache.targetOf(await this.deps.cache.locateById(span.regionId));
        const end = await this.feed(span, target);
        if (end.progressed) bo = undefined;
        if (this.queue.stopped) return;
        if (end.shed) continue; // dropped for a slow consumer, not for a fault: resume without a backoff
        const e = end.error;
        if (e?.positionCompacted) {
          const pc = e.positionCompacted;
          if (!this.opts.resetOnCompacted)
            return this.queue.fail(new PositionCompactedError(pc.regionId, pc.fromIndex, pc.oldestIndex, target.addr));
          const where = { regionId: span.regionId, index: span.index, start: span.start, end: span.end };
          // From now on: the next feed's INITIALIZED gives the span its new position.
          const fresh = { ...span, index: 0n };
          this.queue.push({ split: span, parts: [{ span: fresh, index: 0n }] });
          this.queue.push({ event: { type: "reset", ...where, oldestIndex: pc.oldestIndex }, span: fresh });
          span = fresh;
          continue;
        }
        if (e?.epochNotMatch && e.epochNotMatch.currentRegions.length > 0) {
          this.deps.cache.onRegionError(target, regionErrorOf(e));
          span = this.splitSpan(span, this.partsAfter(span, e.epochNotMatch.currentRegions, end.errorIndex));
          bo = undefined;
          continue;
        }
        if (e) {
          lastError = new Error(`raw watch feed of region ${target.region.id} ended: ${e.message}`);
          fast = e.serverIsBusy ? false : this.deps.cache.onRegionError(target, regionErrorOf(e));
        } else {
          lastError = end.transport ?? new Error(`the raw feed of region ${target.region.id} at ${target.addr} ended`);
          this.deps.cache.onSendFail(target);
        }
      } catch (err) {
        if (err instanceof RawWatchRangeError) return this.queue.fail(err);
        lastError = err;
      }
      this.deps.log.debug(
        { err: errorMessage(lastError), region_id: String(span.regionId) },
        "raw watch: resubscribing",
      );
      const policy = { ...this.deps.policy, deadlineMs: this.opts.reconnectDeadlineMs ?? this.deps.policy.deadlineMs };
      bo ??= new Backoff("watchRaw", span.start, policy, this.deps.runtime);
      try {
        await bo.retry(lastError, fast);
      } catch (err) {
        return this.queue.fail(err);
      }
    }
  }

  /** One EventFeed call for the span on its region's leader, until it ends. */
  private feed(span: Span, target: RpcTarget): Promise<FeedEnd> {
    const req = ChangeDataRequest.fromPartial({
      regionId: span.regionId,
      regionEpoch: target.region.regionEpoch,
      startKey: span.start,
      endKey: span.end,
      requestId: this.nextRequestId++,
      kvApi: ChangeDataRequest_KvAPI.RawKV,
      fromIndex: span.index,
    });
    return new Promise((resolve) => {
      const call = this.deps.changeData(target.addr).eventFeed(req);
      this.queue.track(call);
      const end: FeedEnd = { progressed: false, errorIndex: 0n };
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
            end.errorIndex = ev.index;
            call.cancel();
            return settle();
          }
          const rows = ev.entries?.entries ?? [];
          const where = { regionId: span.regionId, index: ev.index };
          if (rows.length === 1 && rows[0]!.type === Event_LogType.INITIALIZED) {
            end.progressed = true;
            if (ev.index > span.index) span.index = ev.index;
            this.queue.push({ event: { type: "initialized", ...where, start: span.start, end: span.end }, span });
            continue;
          }
          // Never step back: an event at or below what was received is queued already.
          if (ev.index <= span.index) continue;
          for (const row of rows) {
            if (row.opType === Event_Row_OpType.PUT) {
              const atMs = row.expiresAtMs > 0n ? { expiresAtMs: Number(row.expiresAtMs) } : {};
              this.queue.push({ event: { type: "put", ...where, key: row.key, value: row.value, ...atMs }, span });
            } else if (row.opType === Event_Row_OpType.DELETE) {
              this.queue.push({ event: { type: "delete", ...where, key: row.key }, span });
            }
          }
          span.index = ev.index;
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
