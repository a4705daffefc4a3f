/**
 * MVCC key encoding, byte for byte as TinyKV (§4.4 of the reference notes):
 *   EncodeKey(key, ts) = memcomparable EncodeBytes(key) ++ big-endian(^ts)
 * so that keys sort by user key ascending and, within a key, by timestamp descending
 * (newest version first), which lets a single seek find "the newest version <= ts".
 */
import { TinyKvError } from "../util/errors.js";

/** The largest timestamp: a read at TsMax sees every committed version. */
export const TsMax = 0xffff_ffff_ffff_ffffn;

const GROUP = 8;
const MARKER = 0xff;
const PAD = 0x00;

/** The physical part of a TSO timestamp in ms (TSO = physical ms << 18 | logical). */
export function physicalTime(ts: bigint): bigint {
  return ts >> 18n;
}

/** A key read from the write or default CF that is not a valid encoded MVCC key. */
export class KeyDecodeError extends TinyKvError {
  constructor(
    readonly encoded: Uint8Array,
    reason: string,
  ) {
    super(`cannot decode MVCC key 0x${Buffer.from(encoded).toString("hex")}: ${reason}`, { context: { key: encoded } });
  }
}

/**
 * Memcomparable encoding: 8-byte groups, each followed by a marker `0xFF - padCount`; the last
 * group is zero padded and always present (a key of exactly 8n bytes gets an all-zero group).
 */
export function encodeBytes(key: Uint8Array): Buffer {
  const groups = Math.floor(key.length / GROUP) + 1;
  const out = Buffer.alloc(groups * (GROUP + 1), PAD);
  for (let g = 0; g < groups; g++) {
    const start = g * GROUP;
    const chunk = key.subarray(start, Math.min(start + GROUP, key.length));
    out.set(chunk, g * (GROUP + 1));
    out[g * (GROUP + 1) + GROUP] = MARKER - (GROUP - chunk.length);
  }
  return out;
}

/** Decodes a memcomparable prefix; returns the user key and how many bytes were consumed. */
export function decodeBytes(encoded: Uint8Array): { key: Buffer; consumed: number } {
  const parts: Buffer[] = [];
  let off = 0;
  for (;;) {
    if (off + GROUP + 1 > encoded.length) throw new KeyDecodeError(encoded, "truncated group");
    const marker = encoded[off + GROUP]!;
    const padCount = MARKER - marker;
    if (padCount === 0) {
      parts.push(Buffer.from(encoded.subarray(off, off + GROUP)));
      off += GROUP + 1;
      continue;
    }
    if (padCount > GROUP) throw new KeyDecodeError(encoded, `bad group marker 0x${marker.toString(16)}`);
    const realLen = GROUP - padCount;
    for (let i = off + realLen; i < off + GROUP; i++) {
      if (encoded[i] !== PAD) throw new KeyDecodeError(encoded, "non-zero padding byte");
    }
    parts.push(Buffer.from(encoded.subarray(off, off + realLen)));
    return { key: Buffer.concat(parts), consumed: off + GROUP + 1 };
  }
}

/** The key under which a version of `key` at `ts` lives in CF write / CF default. */
export function encodeKey(key: Uint8Array, ts: bigint): Buffer {
  const enc = encodeBytes(key);
  const out = Buffer.allocUnsafe(enc.length + 8);
  enc.copy(out, 0);
  out.writeBigUInt64BE(TsMax ^ ts, enc.length);
  return out;
}

/** The user key of an encoded MVCC key. */
export function decodeUserKey(encoded: Uint8Array): Buffer {
  const { key, consumed } = decodeBytes(encoded);
  if (encoded.length - consumed !== 8) throw new KeyDecodeError(encoded, "timestamp suffix is not 8 bytes");
  return key;
}

/** The timestamp of an encoded MVCC key (its last 8 bytes, inverted). */
export function decodeTimestamp(encoded: Uint8Array): bigint {
  if (encoded.length < 8) throw new KeyDecodeError(encoded, "shorter than a timestamp");
  const buf = Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  return TsMax ^ buf.readBigUInt64BE(encoded.length - 8);
}

/**
 * True when `encoded` is a version of the user key whose memcomparable form is `encodedUserKey`.
 * Cheaper than decoding: the encoding is prefix-free, so a byte prefix match decides it.
 */
export function isVersionOf(encoded: Uint8Array, encodedUserKey: Uint8Array): boolean {
  return (
    encoded.length === encodedUserKey.length + 8 &&
    Buffer.compare(encoded.subarray(0, encodedUserKey.length), encodedUserKey) === 0
  );
}
