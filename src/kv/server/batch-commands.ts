/**
 * The BatchCommands stream (TiKV's tikvpb.Tikv/BatchCommands): many sub-requests and their answers
 * on one bidirectional stream. Each sub-request is served by the unary rpc of its kind (the same
 * handler, looked up in the service at call time, so the same validation and error mapping), and
 * answered as soon as it is done; the answers finished in one event-loop turn go out as one message.
 */
import * as grpc from "@grpc/grpc-js";
import type { BatchCommandsRequest, BatchCommandsRequest_Request, TinyKvServer } from "../../proto/tinykvpb.js";
import { BatchCommandsResponse, BatchCommandsResponse_Response as ResponsePb } from "../../proto/tinykvpb.js";
import type { BatchCommandsResponse_Response } from "../../proto/tinykvpb.js";
import type { Logger } from "../../util/logger.js";
import type { Runtime } from "../../util/runtime.js";
import { realRuntime } from "../../util/runtime.js";
import { hopTrace } from "../../util/hop-trace.js";
import { MAX_GRPC_MESSAGE_BYTES } from "./limits.js";
import type { BatchKind } from "./batch-kinds.js";
import { BATCH_KIND_RPC, kindOf, READ_KINDS } from "./batch-kinds.js";

export { BATCH_KIND_RPC, type BatchKind } from "./batch-kinds.js";

/**
 * Sub-requests being served on one stream before it stops reading (backpressure: the client's
 * writes then wait in the transport's flow-control windows). Reading resumes at half of it.
 */
export const MAX_BATCH_IN_FLIGHT = 1024;
/** Sub-requests in one message; a bigger message ends the stream with RESOURCE_EXHAUSTED. */
export const MAX_BATCH_MESSAGE_REQUESTS = 1024;
/**
 * Bytes of answers one stream may hold done but not yet taken by gRPC (a client reading slowly,
 * or not at all) before it stops reading; it reads again below half.
 * The count above bounds nothing in bytes: 1,024 reads of an 8 MiB value are 8 GiB. 64 MiB is
 * four full answer messages: a client that reads keeps the pipe full, one that does not costs
 * the store this much, and HTTP/2 flow control holds back what it sends next.
 */
export const MAX_BATCH_ANSWER_BYTES = 64 * 1024 * 1024;
/**
 * What a stream may hold at all. The sub-requests of a message read below the budget all start
 * (1,024 reads at once, at most), so a read whose answer would take it past this is answered
 * RESOURCE_EXHAUSTED instead: nothing happened, the client retries after a backoff. Only reads:
 * a write's answer is small and tells its outcome, so it is always kept.
 */
export const MAX_BATCH_ANSWER_BYTES_HELD = MAX_BATCH_ANSWER_BYTES + MAX_GRPC_MESSAGE_BYTES;

type Call = grpc.ServerDuplexStream<BatchCommandsRequest, BatchCommandsResponse>;
type UnaryHandler = grpc.handleUnaryCall<unknown, unknown>;

function errorAnswer(code: grpc.status, message: string): BatchCommandsResponse_Response {
  return { Error: { code, message } };
}

/** Bytes one message of answers may hold: the gRPC ceiling less room for its own framing. */
const MAX_ANSWER_MESSAGE_BYTES = MAX_GRPC_MESSAGE_BYTES - 1024;

/**
 * An upper bound of a value's protobuf size, cheap (no encoding): its bytes and strings, plus a
 * field header and length for every field, element and nested message.
 */
function sizeBound(v: unknown): number {
  if (v instanceof Uint8Array) return v.length + 16;
  if (typeof v === "string") return v.length * 3 + 16;
  if (Array.isArray(v)) return v.reduce((n: number, x: unknown) => n + sizeBound(x), 16);
  if (v !== null && typeof v === "object")
    return Object.values(v).reduce((n: number, x: unknown) => n + sizeBound(x), 16);
  return 16;
}

/** What a server's BatchCommands streams hold right now, summed over its streams (tests, metrics). */
export interface BatchStreamStats {
  streams: number;
  /** Streams not reading now (backpressure, or closing). */
  paused: number;
  /** Sub-requests started and not answered yet. */
  inFlight: number;
  /** Bytes (sizeBound) of answers done but not yet taken by gRPC (its write callback). */
  answerBytes: number;
  /** The most `answerBytes` has been since the server started. */
  answerBytesPeak: number;
}

/** The server-wide figures every stream adds to. */
interface SharedCounters {
  inFlight: number;
  answerBytes: number;
  answerBytesPeak: number;
}

/** One client's stream: reads sub-requests, serves them, writes their answers in batches. */
class BatchStream {
  private inFlight = 0;
  /** Bytes of this stream's answers done and not yet taken by gRPC (see BatchStreamStats). */
  private answerBytes = 0;
  private readPaused = false;
  private clientDone = false;
  private closing = false;
  private gone = false;
  /** The call was cancelled or failed: write callbacks may never come, its figures are dropped. */
  private released = false;
  private readonly outIds: bigint[] = [];
  private readonly outResponses: BatchCommandsResponse_Response[] = [];
  private readonly outSizes: number[] = [];
  private flushScheduled = false;

  constructor(
    private readonly call: Call,
    private readonly handlerOf: (kind: BatchKind) => UnaryHandler,
    private readonly runtime: Runtime,
    private readonly log: Logger,
    private readonly onGone: (s: BatchStream) => void,
    private readonly counters: SharedCounters,
  ) {
    call.on("data", (msg: BatchCommandsRequest) => this.onMessage(msg));
    call.on("end", () => {
      this.clientDone = true;
      this.maybeEnd();
    });
    // The client went away (closed, cancelled, connection lost): answers have nowhere to go.
    call.on("error", () => this.abandon());
    call.on("cancelled", () => this.abandon());
    call.on("drain", () => this.updateReading());
    // Headers at once tell the client the stream was taken: what it writes from now on reaches us.
    call.sendMetadata(new grpc.Metadata());
  }

  get readingPaused(): boolean {
    return this.readPaused;
  }

  /** Stops reading; the stream ends once the sub-requests already read are answered (a server shutdown). */
  close(): void {
    this.closing = true;
    this.updateReading();
    this.maybeEnd();
  }

  private onMessage(msg: BatchCommandsRequest): void {
    hopTrace?.("srv.recv");
    if (this.gone) return;
    if (msg.requestIds.length !== msg.requests.length)
      return this.fail(
        grpc.status.INVALID_ARGUMENT,
        `BatchCommands message has ${msg.requests.length} requests but ${msg.requestIds.length} request ids`,
      );
    if (msg.requests.length > MAX_BATCH_MESSAGE_REQUESTS)
      return this.fail(
        grpc.status.RESOURCE_EXHAUSTED,
        `BatchCommands message has ${msg.requests.length} requests; the limit is ${MAX_BATCH_MESSAGE_REQUESTS}`,
      );
    for (let i = 0; i < msg.requests.length; i++) this.serve(msg.requestIds[i]!, msg.requests[i]!);
    this.updateReading();
  }

  private serve(id: bigint, req: BatchCommandsRequest_Request): void {
    const kind = kindOf(req);
    if (!(kind in BATCH_KIND_RPC)) return this.answer(id, errorAnswer(grpc.status.INVALID_ARGUMENT, kind));
    const k = kind as BatchKind;
    this.addInFlight(1);
    let answered = false;
    const done = (answer: BatchCommandsResponse_Response) => {
      if (answered) return;
      answered = true;
      this.addInFlight(-1);
      this.answer(id, READ_KINDS.has(k) ? this.refuseIfOverfull(k, answer) : answer);
      this.updateReading();
      this.maybeEnd();
    };
    try {
      this.handlerOf(k)({ request: req[k] } as grpc.ServerUnaryCall<unknown, unknown>, (err, res) => {
        if (err) done(errorAnswer(err.code ?? grpc.status.INTERNAL, err.details ?? `${k} failed`));
        else if (res == null) done(errorAnswer(grpc.status.INTERNAL, `${k}: the handler gave no answer`));
        else done({ [k]: res });
      });
    } catch (err) {
      this.log.error({ err, rpc: k }, "batch sub-request failed");
      done(errorAnswer(grpc.status.INTERNAL, `${k}: ${String(err)}`));
    }
  }

  /** A read's answer, or its refusal when holding it would take the stream past MAX_BATCH_ANSWER_BYTES_HELD. */
  private refuseIfOverfull(k: BatchKind, answer: BatchCommandsResponse_Response): BatchCommandsResponse_Response {
    // An empty stream takes any answer (flush refuses one too big for a message).
    if (this.answerBytes === 0 || this.answerBytes + sizeBound(answer) + 16 <= MAX_BATCH_ANSWER_BYTES_HELD)
      return answer;
    return errorAnswer(
      grpc.status.RESOURCE_EXHAUSTED,
      `${k}: not served: ${this.answerBytes} bytes of answers on this stream wait for the client to read them ` +
        `(limit ${MAX_BATCH_ANSWER_BYTES_HELD}); retry later`,
    );
  }

  private addInFlight(n: number): void {
    this.inFlight += n;
    if (!this.released) this.counters.inFlight += n;
  }

  private addAnswerBytes(n: number): void {
    this.answerBytes += n;
    if (this.released) return;
    this.counters.answerBytes += n;
    this.counters.answerBytesPeak = Math.max(this.counters.answerBytesPeak, this.counters.answerBytes);
  }

  private answer(id: bigint, response: BatchCommandsResponse_Response): void {
    if (this.gone) return;
    const size = sizeBound(response) + 16;
    this.addAnswerBytes(size);
    this.outIds.push(id);
    this.outResponses.push(response);
    this.outSizes.push(size);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Answers finishing in the same turn (one store loop's applies, one read of the socket) share
    // a message. (A microtask flush took 0.2 ms off one client's write but measured lower at 64
    // clients on a loaded machine: smaller messages; left on the turn.)
    this.runtime.defer(() => this.flush());
  }

  /**
   * Writes the answers gathered, in as few messages as fit the gRPC ceiling: a message over it
   * would fail the whole stream. An answer too big for any message is answered RESOURCE_EXHAUSTED.
   */
  private flush(): void {
    this.flushScheduled = false;
    if (this.gone || this.outIds.length === 0) return;
    const ids = this.outIds.splice(0);
    const responses = this.outResponses.splice(0);
    const sizes = this.outSizes.splice(0);
    let from = 0;
    let bytes = 0;
    let blocked = false;
    const send = (to: number) => {
      if (to === from) return;
      const msg = BatchCommandsResponse.create({
        requestIds: ids.slice(from, to),
        responses: responses.slice(from, to),
      });
      // The answers are ours to count until gRPC takes the message: its callback runs once
      // HTTP/2 accepted the bytes, i.e. within the client's flow-control window.
      const held = bytes;
      hopTrace?.("srv.write");
      if (!this.call.write(msg, () => this.taken(held))) blocked = true;
      from = to;
      bytes = 0;
    };
    for (let i = 0; i < responses.length; i++) {
      let size = sizes[i]!;
      if (size > MAX_ANSWER_MESSAGE_BYTES) {
        const exact = ResponsePb.encode(responses[i]!).finish().length + 32;
        if (exact > MAX_ANSWER_MESSAGE_BYTES) {
          const kind = Object.keys(responses[i]!)[0] ?? "answer";
          responses[i] = errorAnswer(
            grpc.status.RESOURCE_EXHAUSTED,
            `${kind}: the answer is ${exact} bytes, over the ${MAX_GRPC_MESSAGE_BYTES}-byte message limit: ask for less`,
          );
          size = sizeBound(responses[i]) + 16;
        } else size = exact;
        this.addAnswerBytes(size - sizes[i]!);
      }
      if (bytes + size > MAX_ANSWER_MESSAGE_BYTES) send(i);
      bytes += size;
    }
    send(responses.length);
    if (blocked) this.updateReading();
  }

  /** gRPC took a message holding `bytes` of answers. */
  private taken(bytes: number): void {
    this.addAnswerBytes(-bytes);
    this.updateReading();
  }

  /** Takes this stream's figures out of the server's: the call is gone, and what it held with it. */
  private release(): void {
    if (this.released) return;
    this.released = true;
    this.counters.inFlight -= this.inFlight;
    this.counters.answerBytes -= this.answerBytes;
  }

  /** Reads while few sub-requests are pending and the client takes its answers; pauses otherwise. */
  private updateReading(): void {
    if (this.gone) return;
    const writeBlocked = this.call.writableNeedDrain;
    const busy = this.inFlight >= (this.readPaused ? MAX_BATCH_IN_FLIGHT / 2 : MAX_BATCH_IN_FLIGHT);
    const full = this.answerBytes >= (this.readPaused ? MAX_BATCH_ANSWER_BYTES / 2 : MAX_BATCH_ANSWER_BYTES);
    const pause = this.closing || writeBlocked || busy || full;
    if (pause && !this.readPaused) this.call.pause();
    else if (!pause && this.readPaused) this.call.resume();
    this.readPaused = pause;
  }

  private maybeEnd(): void {
    if (this.gone || this.inFlight > 0 || !(this.clientDone || this.closing)) return;
    this.flush();
    this.gone = true;
    this.call.end();
    this.onGone(this);
  }

  /** Ends the stream with an error status: the message could not be answered per sub-request. */
  private fail(code: grpc.status, details: string): void {
    this.flush();
    this.gone = true;
    this.call.emit("error", { code, details });
    this.onGone(this);
    this.release();
  }

  private abandon(): void {
    // Also after a normal end: answers still queued to a client that went away are dropped.
    this.release();
    if (this.gone) return;
    this.gone = true;
    this.onGone(this);
  }
}

/**
 * The BatchCommands streams of one server. `handler` is the rpc's implementation; `closeAll`,
 * called before a graceful shutdown, ends every stream once its pending sub-requests are answered
 * (a graceful shutdown waits for open streams, and a client keeps its stream open).
 */
export class BatchCommandsStreams {
  private readonly live = new Set<BatchStream>();
  private readonly counters: SharedCounters = { inFlight: 0, answerBytes: 0, answerBytesPeak: 0 };
  private closed = false;

  constructor(
    private readonly log: Logger,
    private readonly runtime: Runtime = realRuntime,
  ) {}

  /** The rpc implementation; `service` is looked up at each sub-request, so wrappers installed later apply. */
  handler(service: TinyKvServer): grpc.handleBidiStreamingCall<BatchCommandsRequest, BatchCommandsResponse> {
    const handlerOf = (kind: BatchKind) => service[BATCH_KIND_RPC[kind]] as UnaryHandler;
    return (call) => {
      const stream = new BatchStream(
        call,
        handlerOf,
        this.runtime,
        this.log,
        (s) => this.live.delete(s),
        this.counters,
      );
      this.live.add(stream);
      if (this.closed) stream.close();
    };
  }

  stats(): BatchStreamStats {
    let paused = 0;
    for (const s of this.live) if (s.readingPaused) paused++;
    return { streams: this.live.size, paused, ...this.counters };
  }

  closeAll(): void {
    this.closed = true;
    for (const s of [...this.live]) s.close();
  }
}
