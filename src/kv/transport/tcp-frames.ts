/**
 * The raft-over-TCP wire: a connection opens with RAFT_TCP_MAGIC, then carries frames of a 4-byte
 * big-endian length and that many bytes of one encoded raft_serverpb.RaftMessage. A frame of
 * length 0 is a keepalive ping; the receiver answers with one byte, as gRPC's keepalive pings are
 * answered: one answer for the pings of one read, none while an earlier answer is still unsent.
 * Before that the receiver answers the magic with the magic (the only other bytes that travel
 * back): a sender that does not get it is talking to a store that does not take this wire, and
 * dials that store over gRPC instead. The stores' gRPC port takes these
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

/** The first capacity of a partial frame's buffer; it doubles as bytes arrive, up to the frame's size. */
const FIRST_PARTIAL_BYTES = 64 * 1024;

/**
 * Splits the bytes of a connection into frames, holding at most one partial frame (bounded by
 * `maxFrameBytes`, gRPC's limit on the same messages) between chunks. Whole frames inside a chunk
 * are handed out as views of it; a frame split over chunks is copied into one buffer that grows by
 * doubling, so each byte is copied a bounded number of times (a 16 MiB frame in 64 KiB reads must
 * not cost a copy of all so far per read) and the buffer never holds more than twice what arrived.
 */
export class FrameDecoder {
  /** The partial frame (header included) in `partial[0, filled)`; empty when none. */
  private partial: Buffer = Buffer.alloc(0);
  private filled = 0;

  constructor(
    private readonly onFrame: (body: Buffer) => void,
    private readonly maxFrameBytes = MAX_RAFT_MESSAGE_BYTES,
  ) {}

  /** Bytes held for the partial frame (its buffer's capacity). */
  get bufferedBytes(): number {
    return this.partial.length;
  }

  /** Takes the next bytes; throws RaftFrameError on a frame over the limit (nothing more may be read). */
  push(chunk: Buffer): void {
    let at = this.filled > 0 ? this.completePartial(chunk) : 0;
    if (at < 0) return; // all of it went into the partial frame
    while (chunk.length - at >= FRAME_HEADER_BYTES) {
      const length = this.checkedLength(chunk.readUInt32BE(at));
      if (chunk.length - at - FRAME_HEADER_BYTES < length) break;
      const start = at + FRAME_HEADER_BYTES;
      at = start + length;
      this.onFrame(chunk.subarray(start, at));
    }
    if (at === chunk.length) return;
    const rest = chunk.subarray(at);
    this.append(rest, rest.length >= FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + rest.readUInt32BE(0) : undefined);
  }

  /** Feeds the partial frame from `chunk`; returns where the rest of `chunk` starts, or -1 if it was all used. */
  private completePartial(chunk: Buffer): number {
    let at = 0;
    if (this.filled < FRAME_HEADER_BYTES) {
      at = Math.min(FRAME_HEADER_BYTES - this.filled, chunk.length);
      this.append(chunk.subarray(0, at));
      if (this.filled < FRAME_HEADER_BYTES) return -1;
    }
    const total = FRAME_HEADER_BYTES + this.checkedLength(this.partial.readUInt32BE(0));
    const take = Math.min(total - this.filled, chunk.length - at);
    this.append(chunk.subarray(at, at + take), total);
    at += take;
    if (this.filled < total) return -1;
    // The body is handed out as is: decoded messages may keep views of it, so it is never reused.
    const body = this.partial.subarray(FRAME_HEADER_BYTES, total);
    this.partial = Buffer.alloc(0);
    this.filled = 0;
    this.onFrame(body);
    return at;
  }

  private checkedLength(length: number): number {
    if (length > this.maxFrameBytes)
      throw new RaftFrameError(`raft frame of ${length} bytes is over the ${this.maxFrameBytes}-byte limit`);
    return length;
  }

  /**
   * Copies `bytes` after the partial frame, growing its buffer by doubling up to the frame's `total`
   * size (header included); while the header is incomplete (`total` unknown), to just what it holds.
   */
  private append(bytes: Buffer, total?: number): void {
    const needed = this.filled + bytes.length;
    if (needed > this.partial.length) {
      const grown =
        total === undefined ? needed : Math.min(Math.max(this.partial.length * 2, FIRST_PARTIAL_BYTES), total);
      const next = Buffer.allocUnsafe(Math.max(grown, needed));
      this.partial.copy(next, 0, 0, this.filled);
      this.partial = next;
    }
    bytes.copy(this.partial, this.filled);
    this.filled = needed;
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
