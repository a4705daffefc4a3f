import { InvalidArgumentError } from "../storage/index.js";
import { MAX_KEY_BYTES, MAX_SCAN_LIMIT, MAX_VALUE_BYTES } from "./limits.js";

export function checkKey(key: Uint8Array, what = "key"): void {
  if (key.length === 0) throw new InvalidArgumentError(`${what} must not be empty`);
  checkKeyLength(key, what);
}

/** The size limit alone, for a key that may be empty (a prewrite without mutations needs no primary). */
export function checkKeyLength(key: Uint8Array, what = "key"): void {
  if (key.length > MAX_KEY_BYTES)
    throw new InvalidArgumentError(`${what} is ${key.length} bytes; the limit is ${MAX_KEY_BYTES}`);
}

export function checkValue(value: Uint8Array): void {
  if (value.length > MAX_VALUE_BYTES)
    throw new InvalidArgumentError(`value is ${value.length} bytes; the limit is ${MAX_VALUE_BYTES}`);
}

export function checkScanLimit(limit: number): void {
  if (limit <= 0) throw new InvalidArgumentError("scan limit must be at least 1");
  if (limit > MAX_SCAN_LIMIT)
    throw new InvalidArgumentError(`scan limit ${limit} is over the maximum of ${MAX_SCAN_LIMIT}`);
}

export function checkScanRange(start: Uint8Array, end: Uint8Array): void {
  if (end.length > 0 && Buffer.compare(start, end) >= 0) {
    throw new InvalidArgumentError("scan range is empty or inverted: start_key must sort before end_key");
  }
}
