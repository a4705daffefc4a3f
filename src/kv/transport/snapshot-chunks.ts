import type { RaftMessage, SnapshotChunk } from "../../proto/raft_serverpb.js";
import type { SnapshotSource } from "./transport.js";

/** TinyKV sends snapshot data in 1 MiB chunks. */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;

/**
 * The chunks of one snapshot stream: first `{message}`, then the source's bytes as `{data}`
 * chunks of at most `chunkBytes` (small source buffers are coalesced; none is empty).
 * Pulls the source lazily, so memory stays at about one chunk.
 */
export async function* snapshotChunks(
  msg: RaftMessage,
  source: SnapshotSource,
  chunkBytes = SNAPSHOT_CHUNK_BYTES,
): AsyncGenerator<SnapshotChunk> {
  if (!(chunkBytes > 0)) throw new RangeError(`snapshot chunk size must be positive, got ${chunkBytes}`);
  yield { message: msg, data: Buffer.alloc(0) };
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const take = (): Buffer => {
    const out = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    return out;
  };
  for await (const buf of source(msg)) {
    let rest = buf;
    while (rest.length > 0) {
      const n = Math.min(rest.length, chunkBytes - pendingBytes);
      pending.push(rest.subarray(0, n));
      pendingBytes += n;
      rest = rest.subarray(n);
      if (pendingBytes === chunkBytes) yield { data: take() };
    }
  }
  if (pendingBytes > 0) yield { data: take() };
}
