import type { ClientDuplexStream } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { TsoResponse } from "../../proto/schedulerpb.js";
import { ErrorType, TsoRequest } from "../../proto/schedulerpb.js";
import type { Runtime, TimerHandle } from "../../util/runtime.js";
import { realRuntime } from "../../util/runtime.js";
import { SchedulerError } from "../errors.js";
import { MAX_LOGICAL, PHYSICAL_SHIFT_BITS } from "../tso/tso.js";

interface Waiter {
  count: number;
  resolve: (ts: bigint) => void;
  reject: (err: Error) => void;
}

/** A TSO stream failure; every caller waiting on that stream gets it. */
export class TsoStreamError extends Error {
  constructor(
    message: string,
    readonly code?: status,
  ) {
    super(`tso: ${message}`);
    this.name = "TsoStreamError";
  }
}

/** Largest batch one TsoRequest asks for (well below the 2^18 logical space of one ms). */
export const MAX_TSO_BATCH = MAX_LOGICAL / 4;

/**
 * The first of the `count` timestamps a TsoResponse grants: the response carries the last one
 * (physical, logical), so the batch is last - count + 1 .. last.
 */
export function firstTimestampOf(resp: TsoResponse, count: number): bigint {
  const physical = resp.timestamp?.physical ?? 0n;
  const lastLogical = resp.timestamp?.logical ?? 0n;
  return (physical << PHYSICAL_SHIFT_BITS) + lastLogical - BigInt(count) + 1n;
}

/** Rejects a count the scheduler would refuse, before anything is sent. */
export function checkTsoCount(count: number): RangeError | undefined {
  if (!Number.isInteger(count) || count < 1 || count > MAX_TSO_BATCH)
    return new RangeError(`tso count must be in [1, ${MAX_TSO_BATCH}], got ${count}`);
  return undefined;
}

/**
 * Client side of the Tso bidi stream: callers queue, and whenever no request is in flight every
 * queued caller is served by one TsoRequest whose count is their sum. The stream is opened lazily
 * and re-opened by the next call after a failure; a request unanswered within the deadline fails
 * its callers and resets the stream.
 */
export class TsoBatcher {
  private stream: ClientDuplexStream<TsoRequest, TsoResponse> | undefined;
  private queue: Waiter[] = [];
  private inflight: Waiter[] | undefined;
  private timer: TimerHandle | undefined;
  private closed = false;

  constructor(
    private readonly open: () => ClientDuplexStream<TsoRequest, TsoResponse>,
    private readonly clusterId: bigint,
    private readonly timeoutMs: number,
    private readonly runtime: Runtime = realRuntime,
  ) {}

  get(count: number): Promise<bigint> {
    const bad = checkTsoCount(count);
    if (bad) return Promise.reject(bad);
    if (this.closed) return Promise.reject(new TsoStreamError("client closed", status.CANCELLED));
    return new Promise((resolve, reject) => {
      this.queue.push({ count, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.inflight || this.queue.length === 0 || this.closed) return;
    const batch: Waiter[] = [];
    let total = 0;
    while (this.queue.length > 0 && total + this.queue[0]!.count <= MAX_TSO_BATCH) {
      const w = this.queue.shift()!;
      batch.push(w);
      total += w.count;
    }
    this.inflight = batch;
    const stream = this.ensureStream();
    this.timer = this.runtime.setTimeout(
      () => this.fail(stream, new TsoStreamError(`no response within ${this.timeoutMs} ms`, status.DEADLINE_EXCEEDED)),
      this.timeoutMs,
    );
    stream.write(TsoRequest.create({ header: { clusterId: this.clusterId }, count: total }));
  }

  private ensureStream(): ClientDuplexStream<TsoRequest, TsoResponse> {
    if (this.stream) return this.stream;
    const stream = this.open();
    this.stream = stream;
    stream.on("data", (resp: TsoResponse) => this.onResponse(stream, resp));
    stream.on("error", (err: Error & { code?: status; details?: string }) =>
      this.fail(stream, new TsoStreamError(err.details ?? err.message, err.code)),
    );
    stream.on("end", () => this.fail(stream, new TsoStreamError("stream closed by the scheduler", status.UNAVAILABLE)));
    return stream;
  }

  private onResponse(stream: ClientDuplexStream<TsoRequest, TsoResponse>, resp: TsoResponse): void {
    const batch = this.inflight;
    if (stream !== this.stream || !batch) return;
    this.runtime.clearTimeout(this.timer);
    this.inflight = undefined;
    const err = resp.header?.error;
    if (err && err.type !== ErrorType.OK) {
      const e = new SchedulerError(err.type, `Tso: ${err.message}`);
      for (const w of batch) w.reject(e);
    } else {
      const total = batch.reduce((n, w) => n + w.count, 0);
      let next = firstTimestampOf(resp, total);
      for (const w of batch) {
        w.resolve(next);
        next += BigInt(w.count);
      }
    }
    this.pump();
  }

  private fail(stream: ClientDuplexStream<TsoRequest, TsoResponse>, err: Error): void {
    if (stream !== this.stream) return;
    this.runtime.clearTimeout(this.timer);
    this.stream = undefined;
    stream.cancel();
    const batch = this.inflight ?? [];
    this.inflight = undefined;
    for (const w of batch) w.reject(err);
    // Callers queued behind the failed request get a fresh stream.
    this.pump();
  }

  /** Drops the stream (the scheduler leader moved): waiters on it fail as unavailable, the next call opens anew. */
  resetStream(why: string): void {
    if (this.stream) this.fail(this.stream, new TsoStreamError(why, status.UNAVAILABLE));
  }

  close(): void {
    this.closed = true;
    this.runtime.clearTimeout(this.timer);
    const err = new TsoStreamError("client closed", status.CANCELLED);
    for (const w of [...(this.inflight ?? []), ...this.queue]) w.reject(err);
    this.inflight = undefined;
    this.queue = [];
    this.stream?.cancel();
    this.stream = undefined;
  }
}
