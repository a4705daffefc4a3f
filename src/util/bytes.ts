/** Lexicographic byte comparison, the order LevelDB and region ranges use. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** True when `key` lies in [start, end); an empty end means +infinity. */
export function keyInRange(key: Uint8Array, start: Uint8Array, end: Uint8Array): boolean {
  return Buffer.compare(key, start) >= 0 && (end.length === 0 || Buffer.compare(key, end) < 0);
}

/** Printable form of a key for logs and errors: UTF-8 when printable, hex otherwise. */
export function formatKey(key: Uint8Array): string {
  const s = Buffer.from(key).toString("utf8");
  return /^[\x20-\x7e]*$/.test(s) ? JSON.stringify(s) : `0x${Buffer.from(key).toString("hex")}`;
}

export function u64be(n: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(n);
  return b;
}
