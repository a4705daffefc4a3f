/**
 * The raft-over-TCP wire: a connection opens with RAFT_TCP_MAGIC, then carries frames of a 4-byte
 * big-endian length and that many bytes of one encoded raft_serverpb.RaftMessage. A frame of
 * length 0 is a keepalive ping; the receiver answers each with one byte (the only bytes that
 * travel back), as gRPC's keepalive pings are answered. The stores' gRPC port takes these
 * connections too: the first bytes tell them from HTTP/2 (which opens with "PRI * HTTP/2.0").
 */
import { RaftMessage } from "../../proto/raft_serverpb.js";
import { TransportError } from "./errors.js";
import { MAX_RAFT_MESSAGE_BYTES } from "./message-size.js";

/** The first bytes of a raft connection: "TKVRAFT" and the wire's version. */
export const RAFT_TCP_MAGIC = Buffer.from("TKVRAFT\x01", "latin1");
export const FRAME_HEADER_BYTES = 4;
/** The receiver's answer to a ping frame. */
export const PONG = Buffer.from([0]);

/** The frame header of a message of `length` bytes (0: a ping). */
export function frameHeader(length: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(length, 0);
  return header;
}

/** A peer sent bytes that are not frames of this wire: the connection is closed. */
export class RaftFrameError extends TransportError {
  constructor(message: string) {
    super(message);
    this.name = "RaftFrameError";
  }
}

/**
 * Splits the bytes of a connection into frames, holding at most one partial frame (bounded by
 * `maxFrameBytes`, gRPC's limit on the same messages) between chunks.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(
    private readonly onFrame: (body: Buffer) => void,
    private readonly maxFrameBytes = MAX_RAFT_MESSAGE_BYTES,
  ) {}

  /** Takes the next bytes; throws RaftFrameError on a frame over the limit (nothing more may be read). */
  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.buffered > 0) {
      this.chunks.push(chunk);
      buf = Buffer.concat(this.chunks, this.buffered + chunk.length);
      this.chunks = [];
      this.buffered = 0;
    }
    let at = 0;
    while (buf.length - at >= FRAME_HEADER_BYTES) {
      const length = buf.readUInt32BE(at);
      if (length > this.maxFrameBytes)
        throw new RaftFrameError(`raft frame of ${length} bytes is over the ${this.maxFrameBytes}-byte limit`);
      if (buf.length - at - FRAME_HEADER_BYTES < length) break;
      const start = at + FRAME_HEADER_BYTES;
      at = start + length;
      this.onFrame(buf.subarray(start, at));
    }
    if (at < buf.length) {
      // Copied: the rest of a big chunk must not pin it whole while the frame completes.
      const rest = Buffer.from(buf.subarray(at));
      this.chunks.push(rest);
      this.buffered = rest.length;
    }
  }
}

/** Decodes one message frame; throws RaftFrameError when it is not a RaftMessage. */
export function decodeRaftFrame(body: Buffer): RaftMessage {
  try {
    return RaftMessage.decode(body);
  } catch (err) {
    throw new RaftFrameError(`undecodable raft message of ${body.length} bytes: ${(err as Error).message}`);
  }
}
