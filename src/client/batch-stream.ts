/**
 * One BatchCommands stream to a store: requests of one event-loop turn go out as one message,
 * each with an id; answers come back in any order and settle the request with that id. Every
 * request has its own deadline. A stream that breaks fails what it still owes, and is not reused.
 */
import * as grpc from "@grpc/grpc-js";
import type {
  BatchCommandsRequest_Request,
  BatchCommandsResponse,
  BatchCommandsResponse_Response,
  TinyKvClient,
} from "../proto/tinykvpb.js";
import { BatchCommandsRequest } from "../proto/tinykvpb.js";
import { TinyKvError } from "../util/errors.js";
import type { Runtime, TimerHandle } from "../util/runtime.js";
import { hopTrace } from "../util/hop-trace.js";

/** A request kind: its field name in BatchCommandsRequest.Request. */
export type BatchKind = keyof BatchCommandsRequest_Request;

/** Requests in one message at most (the server refuses more than 1024). */
const MAX_MESSAGE_REQUESTS = 256;

/**
 * The stream broke (the store restarted, the connection dropped) before the request was answered.
 * `code` is UNAVAILABLE, so it is retried as an unreachable store is; `sent` says the request had
 * been written to the stream, so it may have been applied (a write's outcome is unknown).
 */
export class BatchStreamBrokenError extends TinyKvError {
  readonly code = grpc.status.UNAVAILABLE;

  constructor(
    readonly storeAddr: string,
    readonly sent: boolean,
    readonly streamStatus: string,
  ) {
    super(`BatchCommands stream to ${storeAddr} broke (${streamStatus}) before the answer`);
  }
}

/** A request got an error answer, with the gRPC status its unary rpc would have ended with. */
export class BatchRequestError extends TinyKvError {
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(`${grpc.status[code] ?? code}: ${details}`);
  }
}

interface Pending {
  kind: BatchKind;
  request: unknown;
  /** The same request by its unary rpc, for a store that does not serve BatchCommands. */
  unary: () => Promise<unknown>;
  resolve(res: unknown): void;
  reject(err: unknown): void;
  timer: TimerHandle;
  sent: boolean;
}

export interface BatchStreamEvents {
  /** The first answer arrived: the store serves BatchCommands. */
  onAnswer(): void;
  /** The store does not serve BatchCommands; the requests owed have been sent by their unary rpcs. */
  onUnsupported(): void;
  /** The stream ended or failed; its pending requests have been failed. */
  onBroken(): void;
}

export class BatchCommandsStream {
  private readonly call: grpc.ClientDuplexStream<BatchCommandsRequest, BatchCommandsResponse>;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private outbox: number[] = [];
  private flushScheduled = false;
  private answered = false;
  /** The server took the stream (its headers came): requests written since reach it. */
  private accepted = false;
  private over = false;

  constructor(
    client: TinyKvClient,
    readonly addr: string,
    private readonly timeoutMs: number,
    private readonly runtime: Runtime,
    private readonly events: BatchStreamEvents,
  ) {
    this.call = client.batchCommands();
    this.call.on("metadata", () => {
      this.accepted = true;
    });
    this.call.on("data", (msg: BatchCommandsResponse) => this.onAnswers(msg));
    // The status arrives before the answers still buffered in the stream are read: settle what is
    // owed only after them, at the readable end (or a turn later, should the end not come).
    let status: grpc.StatusObject | undefined;
    this.call.on("error", (err: grpc.ServiceError) => {
      status ??= err;
    });
    this.call.on("status", (s: grpc.StatusObject) => {
      status ??= s;
      this.runtime.defer(() => this.end(status!));
    });
    this.call.on("end", () => this.end(status ?? { code: grpc.status.UNAVAILABLE, details: "ended by the server" }));
  }

  get broken(): boolean {
    return this.over;
  }

  send<Res>(kind: BatchKind, request: unknown, unary: () => Promise<Res>): Promise<Res> {
    hopTrace?.("client.send");
    return new Promise<Res>((resolve, reject) => {
      const id = this.nextId++;
      const timer = this.runtime.setTimeout(() => this.expire(id), this.timeoutMs);
      this.pending.set(id, {
        kind,
        request,
        unary,
        resolve: resolve as (r: unknown) => void,
        reject,
        timer,
        sent: false,
      });
      this.outbox.push(id);
      if (this.outbox.length >= MAX_MESSAGE_REQUESTS) this.flush();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        // Requests issued in the same turn (e.g. after one read of answers) share a message.
        this.runtime.defer(() => this.flush());
      }
    });
  }

  /** Ends the stream; what it still owes fails as a broken stream's would. */
  close(): void {
    if (this.over) return;
    this.call.cancel();
    this.end({ code: grpc.status.CANCELLED, details: "closed by the client" });
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.over || this.outbox.length === 0) return;
    const ids: bigint[] = [];
    const requests: BatchCommandsRequest_Request[] = [];
    for (const id of this.outbox) {
      const p = this.pending.get(id);
      if (!p) continue; // expired before it went out
      p.sent = true;
      ids.push(BigInt(id));
      requests.push({ [p.kind]: p.request });
    }
    this.outbox = [];
    hopTrace?.("client.write");
    if (ids.length > 0) this.call.write(BatchCommandsRequest.create({ requestIds: ids, requests }));
  }

  private onAnswers(msg: BatchCommandsResponse): void {
    hopTrace?.("client.recv");
    if (!this.answered) {
      this.answered = true;
      this.events.onAnswer();
    }
    const n = Math.min(msg.requestIds.length, msg.responses.length);
    for (let i = 0; i < n; i++) {
      const id = Number(msg.requestIds[i]);
      const p = this.pending.get(id);
      if (!p) continue; // answered after its deadline: the caller has already been told
      this.pending.delete(id);
      this.runtime.clearTimeout(p.timer);
      const r = msg.responses[i]!;
      const res = r[p.kind as keyof BatchCommandsResponse_Response];
      if (res !== undefined) p.resolve(res);
      else if (r.Error) p.reject(new BatchRequestError(r.Error.code, r.Error.message));
      else p.reject(new BatchRequestError(grpc.status.INTERNAL, `${this.addr} answered ${p.kind} with another kind`));
    }
  }

  private expire(id: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.reject(
      new BatchRequestError(
        grpc.status.DEADLINE_EXCEEDED,
        `${p.kind} to ${this.addr}: no answer in ${this.timeoutMs} ms`,
      ),
    );
  }

  private end({ code, details }: Pick<grpc.StatusObject, "code" | "details">): void {
    if (this.over) return;
    this.over = true;
    const owed = [...this.pending.values()];
    this.pending.clear();
    this.outbox = [];
    for (const p of owed) this.runtime.clearTimeout(p.timer);
    if (code === grpc.status.UNIMPLEMENTED && !this.answered) {
      // The store served none of them (it has no such rpc): sending them again is safe.
      this.events.onUnsupported();
      for (const p of owed) p.resolve(p.unary());
      return;
    }
    // An OK end with answers still owed is the server's graceful shutdown: they are lost with it.
    const streamStatus = `${grpc.status[code] ?? code}: ${details || "ended by the server"}`;
    // Before the server took the stream (no connection, say) nothing reached it: safe to send again.
    for (const p of owed) p.reject(new BatchStreamBrokenError(this.addr, p.sent && this.accepted, streamStatus));
    this.events.onBroken();
  }
}
