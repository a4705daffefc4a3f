/**
 * The Lock (CF lock) and Write (CF write) records, in TinyKV's byte formats:
 *   Lock  = primary | kind(1) | start_ts(8 BE) | ttl(8 BE)
 *   Write = kind(1) | start_ts(8 BE)
 */
import { LockInfo, Op } from "../proto/kvrpcpb.js";
import { InvalidArgumentError } from "../kv/storage/index.js";
import { TinyKvError } from "../util/errors.js";
import { TsMax } from "./codec.js";

export enum WriteKind {
  Put = 1,
  Delete = 2,
  Rollback = 3,
}

/** A stored lock or write record that does not parse: on-disk corruption or a foreign writer. */
export class RecordDecodeError extends TinyKvError {
  constructor(what: string, bytes: Uint8Array, reason: string) {
    super(`cannot decode ${what} record 0x${Buffer.from(bytes).toString("hex")}: ${reason}`);
  }
}

function parseKind(what: string, bytes: Uint8Array, b: number): WriteKind {
  if (b !== WriteKind.Put && b !== WriteKind.Delete && b !== WriteKind.Rollback) {
    throw new RecordDecodeError(what, bytes, `unknown kind ${b}`);
  }
  return b;
}

/** Maps a mutation's op to the kind its lock (and later its write) records. */
export function writeKindFromOp(op: Op): WriteKind {
  switch (op) {
    case Op.Put:
      return WriteKind.Put;
    case Op.Del:
      return WriteKind.Delete;
    case Op.Rollback:
      return WriteKind.Rollback;
    default:
      // Op.Lock is TinySQL's pessimistic-lock op; TinyKV does not serve it and neither do we.
      throw new InvalidArgumentError(`mutation op ${Op[op] ?? op} is not supported (expected Put or Del)`);
  }
}

export class Lock {
  constructor(
    readonly primary: Buffer,
    readonly ts: bigint,
    readonly ttl: bigint,
    readonly kind: WriteKind,
  ) {}

  toBytes(): Buffer {
    const out = Buffer.allocUnsafe(this.primary.length + 17);
    this.primary.copy(out, 0);
    out[this.primary.length] = this.kind;
    out.writeBigUInt64BE(this.ts, this.primary.length + 1);
    out.writeBigUInt64BE(this.ttl, this.primary.length + 9);
    return out;
  }

  static parse(bytes: Buffer): Lock {
    if (bytes.length < 17) throw new RecordDecodeError("lock", bytes, `${bytes.length} bytes, need at least 17`);
    const p = bytes.length - 17;
    return new Lock(
      Buffer.from(bytes.subarray(0, p)),
      bytes.readBigUInt64BE(p + 1),
      bytes.readBigUInt64BE(p + 9),
      parseKind("lock", bytes, bytes[p]!),
    );
  }

  /**
   * Whether this lock blocks a reader of `key` at `readTs`: a lock older than the read may belong
   * to a txn that commits before readTs, so the reader must wait or resolve it. TinyKV's rule
   * for TsMax reads: only a lock on a primary key blocks them (secondaries are ignored).
   */
  blocksRead(key: Uint8Array, readTs: bigint): boolean {
    if (readTs === TsMax && Buffer.compare(key, this.primary) !== 0) return false;
    return this.ts <= readTs;
  }

  /** The wire form a client needs to resolve this lock. */
  info(key: Uint8Array): LockInfo {
    return LockInfo.create({
      primaryLock: this.primary,
      lockVersion: this.ts,
      key: Buffer.from(key),
      lockTtl: this.ttl,
    });
  }
}

export class Write {
  constructor(
    readonly startTs: bigint,
    readonly kind: WriteKind,
  ) {}

  toBytes(): Buffer {
    const out = Buffer.allocUnsafe(9);
    out[0] = this.kind;
    out.writeBigUInt64BE(this.startTs, 1);
    return out;
  }

  static parse(bytes: Buffer): Write {
    if (bytes.length !== 9) throw new RecordDecodeError("write", bytes, `${bytes.length} bytes, expected 9`);
    return new Write(bytes.readBigUInt64BE(1), parseKind("write", bytes, bytes[0]!));
  }
}
