import { InvalidArgumentError } from "../storage/index.js";
import { MAX_BATCH_BYTES, MAX_BATCH_KEYS, MAX_KEY_BYTES, MAX_SCAN_LIMIT, MAX_VALUE_BYTES } from "./limits.js";

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

/** A reverse scan's range is [end_key, start_key): start_key is the exclusive upper bound (TiKV's rule). */
export function checkReverseScanRange(start: Uint8Array, end: Uint8Array): void {
  if (start.length > 0 && Buffer.compare(end, start) >= 0) {
    throw new InvalidArgumentError(
      "reverse scan range is empty or inverted: with reverse, start_key is the upper bound and must sort after end_key",
    );
  }
}

/** A delete range [start, end): end empty means no end; otherwise start must sort before it. */
export function checkDeleteRange(start: Uint8Array, end: Uint8Array): void {
  checkKeyLength(start, "start_key");
  checkKeyLength(end, "end_key");
  if (end.length > 0 && Buffer.compare(start, end) >= 0)
    throw new InvalidArgumentError("delete range is empty or inverted: start_key must sort before end_key");
}

/**
 * A batch's keys (and values): at least one, each key non-empty and within the limits, and the
 * batch within MAX_BATCH_KEYS and MAX_BATCH_BYTES. The error names the first bad item's index.
 */
export function checkBatch(items: readonly { key: Uint8Array; value?: Uint8Array }[]): void {
  if (items.length === 0) throw new InvalidArgumentError("batch is empty: send at least one key");
  if (items.length > MAX_BATCH_KEYS)
    throw new InvalidArgumentError(`batch has ${items.length} keys; the limit is ${MAX_BATCH_KEYS}`);
  let bytes = 0;
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    checkKey(item.key, `key ${i} of the batch`);
    if (item.value) checkValue(item.value);
    bytes += item.key.length + (item.value?.length ?? 0);
  }
  if (bytes > MAX_BATCH_BYTES)
    throw new InvalidArgumentError(`batch is ${bytes} bytes of keys and values; the limit is ${MAX_BATCH_BYTES}`);
}
