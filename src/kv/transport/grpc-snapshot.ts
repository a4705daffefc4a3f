import type * as grpc from "@grpc/grpc-js";
import { Metadata } from "@grpc/grpc-js";
import type { RaftMessage, SnapshotChunk } from "../../proto/raft_serverpb.js";
import type { TinyKvClient } from "../../proto/tinykvpb.js";
import type { Runtime } from "../../util/runtime.js";
import { snapshotChunks } from "./snapshot-chunks.js";
import type { SnapshotSource } from "./transport.js";

/** Snapshot chunks written but not yet handed to HTTP/2: bounds memory to about this many chunks. */
const SNAPSHOT_WINDOW = 2;

export interface SnapshotCallOptions {
  client: TinyKvClient;
  msg: RaftMessage;
  source: SnapshotSource;
  chunkBytes: number;
  timeoutMs: number;
  /** The deadline is measured from its clock (gRPC enforces it on the real one). */
  runtime: Runtime;
  /** Gets the call as soon as it exists (so a closing transport can cancel it). */
  onCall?: (call: grpc.ClientWritableStream<SnapshotChunk>) => void;
}

/**
 * One `Snapshot` call: `{message}`, then the source's bytes as `{data}` chunks, then end; resolves
 * with the data bytes sent once the peer answered Done, rejects on any failure (source, peer, deadline).
 */
export function streamSnapshotCall(opts: SnapshotCallOptions): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let sent = 0;
    let status: grpc.StatusObject | undefined;
    const c = opts.client.snapshot(
      new Metadata(),
      { deadline: new Date(opts.runtime.now() + opts.timeoutMs) },
      (err) => (err ? reject(err) : resolve(sent)),
    );
    opts.onCall?.(c);
    c.on("status", (s: grpc.StatusObject) => (status = s));
    // Errors reach the callback; this listener only keeps an 'error' event from going unhandled.
    c.on("error", () => undefined);
    // grpc-js buffers 16 objects before write() says stop (16 MiB of chunks), so memory is
    // bounded by waiting for each chunk's write callback, SNAPSHOT_WINDOW chunks at a time.
    const pump = async () => {
      const window: Promise<void>[] = [];
      for await (const chunk of snapshotChunks(opts.msg, opts.source, opts.chunkBytes)) {
        if (status) throw new Error(`stream closed by the peer: ${status.details}`);
        sent += chunk.data.length;
        const w = writeAcked(c, chunk);
        // Awaited below; this handler only stops a rejection from counting as unhandled while
        // it waits in the window (or after the loop threw and nobody awaits it any more).
        w.catch(() => undefined);
        window.push(w);
        if (window.length >= SNAPSHOT_WINDOW) await window.shift();
      }
      await Promise.all(window);
      c.end();
    };
    pump().catch((err: unknown) => {
      c.cancel();
      reject(err);
    });
  });
}

/** Writes one message and resolves once grpc-js has handed it to HTTP/2 (fails if the call ends first). */
function writeAcked<T>(call: grpc.ClientWritableStream<T>, chunk: T): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onEnd = () => {
      call.off("status", onEnd);
      call.off("close", onEnd);
      reject(new Error("stream ended while a chunk was being written"));
    };
    call.on("status", onEnd);
    call.on("close", onEnd);
    call.write(chunk, (err?: Error | null) => {
      call.off("status", onEnd);
      call.off("close", onEnd);
      if (err) reject(err);
      else resolve();
    });
  });
}
