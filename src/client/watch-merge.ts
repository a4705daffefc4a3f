/**
 * The ordering half of a watch: rows arrive per key span (one region's feed each) in any order
 * across spans; each span's resolved ts says no row at or below it will still come from it. A
 * row is released once every span has resolved past it, all released rows sorted by
 * (commit_ts, key): the one total order in which a position can be resumed exactly.
 */
import { keyInRange } from "../util/bytes.js";

export type WatchChange =
  | { type: "put"; key: Buffer; value: Buffer; commitTs: bigint; startTs: bigint }
  | { type: "delete"; key: Buffer; commitTs: bigint; startTs: bigint };

/** Every change with commit_ts <= ts has been yielded: resuming with `fromTs: ts` misses none and repeats none. */
export interface WatchResolved {
  type: "resolved";
  ts: bigint;
}

export type WatchEvent = WatchChange | WatchResolved;

/** Where a watch starts: after commit_ts `ts` or, with `afterKey`, after the change (ts, afterKey). */
export interface WatchPosition {
  ts: bigint;
  afterKey?: Buffer;
}

/** A part of the watched range served by one region's feed. */
export interface WatchSpan {
  start: Buffer;
  /** Empty: no bound. */
  end: Buffer;
  /** No row at or below it is still to come from this span. */
  resolved: bigint;
}

export function comparePosition(a: WatchChange, b: WatchChange): number {
  if (a.commitTs !== b.commitTs) return a.commitTs < b.commitTs ? -1 : 1;
  return Buffer.compare(a.key, b.key);
}

export class WatchMerger {
  private readonly spans = new Set<WatchSpan>();
  private pending: Array<{ span: WatchSpan; change: WatchChange }> = [];
  private released: bigint;

  constructor(private readonly from: WatchPosition) {
    // A resume after (ts, key) must still take the rest of commit ts: only what is below ts is done.
    this.released = from.afterKey ? from.ts - 1n : from.ts;
  }

  /** The commit ts a new subscription starts after. */
  get checkpoint(): bigint {
    return this.released;
  }

  get pendingRows(): number {
    return this.pending.length;
  }

  addSpan(span: WatchSpan): void {
    this.spans.add(span);
  }

  /**
   * A span's feed ended: drop what it sent above its resolved ts (its next feed sends it again).
   * The span stays, its resolved ts frozen, so nothing in its range is released meanwhile.
   */
  resetSpan(span: WatchSpan): void {
    this.pending = this.pending.filter((p) => p.span !== span || p.change.commitTs <= span.resolved);
  }

  /** A span reset before now covers more than one region: `parts` (resolved as it was) replace it. */
  splitSpan(span: WatchSpan, parts: WatchSpan[]): void {
    this.spans.delete(span);
    for (const part of parts) this.spans.add(part);
    for (const p of this.pending)
      if (p.span === span) p.span = parts.find((x) => keyInRange(p.change.key, x.start, x.end)) ?? span;
  }

  /** Takes a row from a span's feed (ignoring what the start position already covers). */
  add(span: WatchSpan, change: WatchChange): void {
    if (change.commitTs <= span.resolved || !keyInRange(change.key, span.start, span.end)) return;
    const { ts, afterKey } = this.from;
    if (afterKey && change.commitTs === ts && Buffer.compare(change.key, afterKey) <= 0) return;
    if (!afterKey && change.commitTs <= ts) return;
    this.pending.push({ span, change });
  }

  /** The span with the lowest resolved ts: the one holding the release back. */
  slowestSpan(): WatchSpan | undefined {
    let slowest: WatchSpan | undefined;
    for (const s of this.spans) if (!slowest || s.resolved < slowest.resolved) slowest = s;
    return slowest;
  }

  /** A span resolved `ts`: returns what that releases, rows first, then the new resolved ts. */
  resolve(span: WatchSpan, ts: bigint): WatchEvent[] {
    if (ts > span.resolved) span.resolved = ts;
    let min: bigint | undefined;
    for (const s of this.spans) if (min === undefined || s.resolved < min) min = s.resolved;
    if (min === undefined || min <= this.released) return [];
    const ready = this.pending.filter((p) => p.change.commitTs <= min);
    this.pending = this.pending.filter((p) => p.change.commitTs > min);
    this.released = min;
    const out: WatchEvent[] = ready.map((p) => p.change).sort(comparePosition);
    out.push({ type: "resolved", ts: min });
    return out;
  }
}
