/**
 * A snapshot scan at a timestamp: yields, in user-key order from a start key, each key's visible
 * value, or the lock that blocks reading it. Keys come from both CF write (committed versions) and
 * CF lock (a key whose first version is only prewritten must still report its lock), merged.
 */
import type { CfCursor } from "../kv/engine/index.js";
import { CF_LOCK, CF_WRITE } from "../kv/engine/index.js";
import type { StorageReader } from "../kv/storage/index.js";
import { decodeUserKey, encodeBytes, encodeKey, isVersionOf } from "./codec.js";
import { readCommittedValue } from "./mvcc-txn.js";
import { Lock, Write, WriteKind } from "./records.js";

export type ScanItem =
  | { key: Buffer; value: Buffer; lock?: undefined }
  | { key: Buffer; lock: Lock; value?: undefined };

export class MvccScanner {
  private readonly locks: CfCursor;
  private readonly writes: CfCursor;
  private started = false;

  constructor(
    private readonly reader: StorageReader,
    private readonly ts: bigint,
    private readonly startKey: Buffer,
  ) {
    this.locks = reader.iterCF(CF_LOCK);
    this.writes = reader.iterCF(CF_WRITE);
  }

  /** The next visible item, or undefined at the end. Deleted and never-visible keys are skipped. */
  async next(): Promise<ScanItem | undefined> {
    if (!this.started) {
      this.started = true;
      await this.locks.seek(this.startKey);
      await this.writes.seek(encodeBytes(this.startKey)); // the smallest encoded key of startKey
    }
    for (;;) {
      const lockKey = this.locks.valid ? this.locks.key : undefined;
      const writeKey = this.writes.valid ? decodeUserKey(this.writes.key) : undefined;
      if (lockKey === undefined && writeKey === undefined) return undefined;
      const key = Buffer.from(
        lockKey === undefined
          ? writeKey!
          : writeKey === undefined
            ? lockKey
            : Buffer.compare(lockKey, writeKey) <= 0
              ? lockKey
              : writeKey,
      );

      let lock: Lock | undefined;
      if (lockKey?.equals(key)) {
        lock = Lock.parse(this.locks.value);
        await this.locks.next();
      }
      let value: Buffer | undefined;
      if (writeKey?.equals(key)) value = await this.visibleValue(key);

      if (lock?.blocksRead(key, this.ts)) return { key, lock };
      if (value !== undefined) return { key, value };
    }
  }

  /** The value of `key` at ts from the write cursor, leaving the cursor on the next user key. */
  private async visibleValue(key: Buffer): Promise<Buffer | undefined> {
    const encoded = encodeBytes(key);
    let value: Buffer | undefined;
    await this.writes.seek(encodeKey(key, this.ts));
    for (; this.writes.valid && isVersionOf(this.writes.key, encoded); await this.writes.next()) {
      const write = Write.parse(this.writes.value);
      if (write.kind === WriteKind.Rollback) continue;
      if (write.kind === WriteKind.Put) value = await readCommittedValue(this.reader, key, write.startTs);
      break;
    }
    // Skip this key's older versions in one seek: encodeKey(key, 0) is its last possible entry.
    const last = encodeKey(key, 0n);
    await this.writes.seek(last);
    if (this.writes.valid && this.writes.key.equals(last)) await this.writes.next();
    return value;
  }

  async close(): Promise<void> {
    await Promise.all([this.locks.close(), this.writes.close()]);
  }
}
