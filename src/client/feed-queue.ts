/**
 * What a watch (watch.ts, raw-watch.ts) hands its consumer: the queue between the change feeds
 * it reads and the async iterator, with the watch's life (stop, fail) and its back-pressure. gRPC
 * keeps reading a paused stream, so a consumer that falls `highWaterMark` items behind makes the
 * queue cancel every feed ("shed"); each feed resumes from its own position once the consumer has
 * read back down to half of it.
 */
import type * as grpc from "@grpc/grpc-js";

export class FeedQueue<
  T,
  C extends Pick<grpc.ClientReadableStream<unknown>, "cancel"> = grpc.ClientReadableStream<unknown>,
> {
  private readonly items: T[] = [];
  /** Pending take()s (a consumer may ask again before an answer): each is woken to look again. */
  private waiters: Array<() => void> = [];
  private failure: unknown;
  private ended = false;
  private shedding = false;
  private roomWaiters: Array<() => void> = [];
  private readonly calls = new Set<C>();
  /** Feeds ended by shedding: their end is no fault. */
  private readonly shedCalls = new WeakSet<C>();
  /** Times the feeds were dropped for a consumer that did not keep up. */
  sheds = 0;

  constructor(
    private readonly highWaterMark: number,
    /** Called once, when the queue is stopped or failed (the watch is over). */
    private readonly onOver: () => void = () => undefined,
  ) {}

  /** True once stopped or failed: the feeds should end. */
  get over(): boolean {
    return this.ended || this.failure !== undefined;
  }

  get stopped(): boolean {
    return this.ended;
  }

  push(...items: T[]): void {
    if (items.length === 0 || this.ended) return;
    this.items.push(...items);
    if (!this.shedding && this.items.length > this.highWaterMark) this.shed();
    this.wake();
  }

  /**
   * The next item, waiting for one; undefined once stopped with nothing left. Throws the
   * failure (and stops) once the items queued before it are taken.
   */
  async take(): Promise<T | undefined> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        if (this.shedding && this.items.length <= this.highWaterMark / 2) this.makeRoom();
        return item;
      }
      if (this.failure !== undefined) {
        const err = this.failure;
        this.stop();
        throw err;
      }
      if (this.ended) return undefined;
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
      });
    }
  }

  /** Ends the watch: every feed is cancelled; a pending take() returns undefined. */
  stop(): void {
    if (this.ended) return;
    const wasOver = this.over;
    this.ended = true;
    if (!wasOver) this.onOver();
    for (const call of this.calls) call.cancel();
    this.calls.clear();
    this.makeRoom();
    this.wake();
  }

  /** The watch failed: every feed is cancelled, and take() throws `err` after the queued items. */
  fail(err: unknown): void {
    if (this.over) return;
    this.failure = err;
    this.onOver();
    for (const call of this.calls) call.cancel();
    this.makeRoom();
    this.wake();
  }

  /** Resolves once feeds may be opened again (at once unless shedding). */
  room(): Promise<void> {
    if (!this.shedding) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** A feed opened: cancelled with the others (at once while shedding). */
  track(call: C): void {
    this.calls.add(call);
    if (this.shedding) {
      this.shedCalls.add(call);
      call.cancel();
    }
  }

  untrack(call: C): void {
    this.calls.delete(call);
  }

  /** Whether the feed was ended by shedding (its error is no fault). */
  wasShed(call: C): boolean {
    return this.shedCalls.has(call);
  }

  private shed(): void {
    this.shedding = true;
    this.sheds++;
    for (const call of this.calls) {
      this.shedCalls.add(call);
      call.cancel();
    }
  }

  private makeRoom(): void {
    this.shedding = false;
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of waiters) w();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
