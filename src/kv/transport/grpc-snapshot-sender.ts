import type * as grpc from "@grpc/grpc-js";
import type { RaftMessage, SnapshotChunk } from "../../proto/raft_serverpb.js";
import { TinyKvClient } from "../../proto/tinykvpb.js";
import type { Logger } from "../../util/logger.js";
import type { Runtime } from "../../util/runtime.js";
import type { TlsConfig } from "../../util/tls.js";
import { grpcChannelCredentials } from "../../util/tls.js";
import { SnapshotSendError } from "./errors.js";
import { streamSnapshotCall } from "./grpc-snapshot.js";
import type { SnapshotSource } from "./transport.js";

/** Snapshot sends beyond the concurrent ones that wait for a turn; more fail at once. */
const MAX_WAITING_SNAPSHOTS = 8;

/** What a snapshot send needs of its destination: where it is, and its slots. */
export interface SnapshotDestination {
  readonly storeId: bigint;
  addr: string | undefined;
  snapshotsActive: number;
  readonly snapshotWaiters: Array<() => void>;
}

export interface SnapshotSenderOptions {
  log: Logger;
  runtime: Runtime;
  source: SnapshotSource;
  tls?: TlsConfig;
  channelOptions: grpc.ChannelOptions;
  chunkBytes: number;
  timeoutMs: number;
  /** Concurrent snapshot streams per destination. */
  maxConcurrent: number;
  /** The store's address, with the transport's resolution deadline. */
  resolve(storeId: bigint): Promise<string>;
  /** Raft hears whether each snapshot arrived (never after close). */
  onStatus(msg: RaftMessage, ok: boolean): void;
}

/**
 * MsgSnapshot, each on its own `Snapshot` call and connection (never behind the raft stream's
 * messages), a few at a time per destination.
 */
export class SnapshotSender {
  private readonly calls = new Set<grpc.ClientWritableStream<SnapshotChunk>>();
  private readonly tasks = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly o: SnapshotSenderOptions) {}

  send(dest: SnapshotDestination, msg: RaftMessage): void {
    const task = this.sendWhenFree(dest, msg);
    this.tasks.add(task);
    void task.finally(() => this.tasks.delete(task));
  }

  /** Cancels the calls in flight; resolves once every send has ended. */
  close(): Promise<void> {
    this.closed = true;
    for (const call of this.calls) call.cancel();
    return Promise.all(this.tasks).then(() => undefined);
  }

  private async sendWhenFree(dest: SnapshotDestination, msg: RaftMessage): Promise<void> {
    if (dest.snapshotsActive >= this.o.maxConcurrent) {
      if (dest.snapshotWaiters.length >= MAX_WAITING_SNAPSHOTS) {
        this.o.log.warn(
          { to_store: dest.storeId, region_id: msg.regionId },
          "too many snapshots queued for store: failing this one",
        );
        this.status(msg, false);
        return;
      }
      await new Promise<void>((r) => dest.snapshotWaiters.push(r));
      if (this.closed) return;
    }
    dest.snapshotsActive++;
    const started = this.o.runtime.now();
    try {
      const bytes = await this.stream(dest, msg);
      this.o.log.info(
        { to_store: dest.storeId, region_id: msg.regionId, bytes, ms: this.o.runtime.now() - started },
        "snapshot sent",
      );
      this.status(msg, true);
    } catch (err) {
      if (!this.closed)
        this.o.log.warn({ err, to_store: dest.storeId, region_id: msg.regionId }, "snapshot send failed");
      this.status(msg, false);
    } finally {
      dest.snapshotsActive--;
      dest.snapshotWaiters.shift()?.();
    }
  }

  /** One Snapshot call on its own connection; resolves with the data bytes sent once the peer answered Done. */
  private async stream(dest: SnapshotDestination, msg: RaftMessage): Promise<number> {
    const fail = (cause: unknown) => new SnapshotSendError(dest.storeId, msg.regionId, cause);
    let addr = dest.addr;
    try {
      addr ??= await this.o.resolve(dest.storeId);
    } catch (err) {
      throw fail(err);
    }
    if (this.closed) throw fail("transport closed");
    const client = new TinyKvClient(addr, grpcChannelCredentials(this.o.tls), this.o.channelOptions);
    let call: grpc.ClientWritableStream<SnapshotChunk> | undefined;
    try {
      return await streamSnapshotCall({
        client,
        msg,
        source: this.o.source,
        chunkBytes: this.o.chunkBytes,
        timeoutMs: this.o.timeoutMs,
        runtime: this.o.runtime,
        onCall: (c) => {
          call = c;
          this.calls.add(c);
        },
      });
    } catch (err) {
      throw fail(err);
    } finally {
      if (call) this.calls.delete(call);
      client.close();
    }
  }

  private status(msg: RaftMessage, ok: boolean): void {
    queueMicrotask(() => {
      if (!this.closed) this.o.onStatus(msg, ok);
    });
  }
}
