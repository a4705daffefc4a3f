/**
 * An MVCC transaction: reads from one storage snapshot at a start timestamp and buffers its
 * writes as `Modify[]`, which the command runner applies in a single atomic `storage.write`.
 * It knows the three CFs' layouts; it knows nothing about Percolator's rules (the commands do).
 */
import type { CfCursor } from "../kv/engine/index.js";
import { CF_DEFAULT, CF_LOCK, CF_WRITE } from "../kv/engine/index.js";
import type { Modify, StorageReader } from "../kv/storage/index.js";
import { decodeTimestamp, encodeBytes, encodeKey, isVersionOf, TsMax } from "./codec.js";
import { Lock, Write, WriteKind } from "./records.js";
import { formatKey } from "../util/bytes.js";
import { TinyKvError } from "../util/errors.js";

/** A Put write record whose value is not in CF default: the data is damaged, never "not found". */
export class MissingValueError extends TinyKvError {
  constructor(
    readonly key: Uint8Array,
    readonly startTs: bigint,
  ) {
    super(`the value of key ${formatKey(key)} written by txn ${startTs} is missing from CF default`, {
      context: { key },
    });
  }
}

/** Reads the value a Put write record points at. */
export async function readCommittedValue(reader: StorageReader, key: Uint8Array, startTs: bigint): Promise<Buffer> {
  const value = await reader.getCF(CF_DEFAULT, encodeKey(key, startTs));
  if (value === undefined) throw new MissingValueError(key, startTs);
  return value;
}

/** A write record together with the commit timestamp its key carries. */
export interface WriteAt {
  write: Write;
  commitTs: bigint;
}

export class MvccTxn {
  private readonly buffer: Modify[] = [];
  /** One CF write cursor, re-seeked by every lookup: creating an engine iterator costs more than a seek. */
  private writeCursor: CfCursor | undefined;

  constructor(
    readonly reader: StorageReader,
    readonly startTs: bigint,
  ) {}

  /** The buffered changes, in the order they were made. */
  get writes(): readonly Modify[] {
    return this.buffer;
  }

  /** Releases the cursor; the reader itself belongs to the caller. */
  async close(): Promise<void> {
    const cursor = this.writeCursor;
    this.writeCursor = undefined;
    await cursor?.close();
  }

  private writeVersions(): CfCursor {
    this.writeCursor ??= this.reader.iterCF(CF_WRITE);
    return this.writeCursor;
  }

  /** Drops everything buffered: a command that found an error writes nothing. */
  discardWrites(): void {
    this.buffer.length = 0;
  }

  putWrite(key: Uint8Array, commitTs: bigint, write: Write): void {
    this.buffer.push({ kind: "put", cf: CF_WRITE, key: encodeKey(key, commitTs), value: write.toBytes() });
  }

  async getLock(key: Uint8Array): Promise<Lock | undefined> {
    const bytes = await this.reader.getCF(CF_LOCK, key);
    return bytes === undefined ? undefined : Lock.parse(bytes);
  }

  putLock(key: Uint8Array, lock: Lock): void {
    this.buffer.push({ kind: "put", cf: CF_LOCK, key: Buffer.from(key), value: lock.toBytes() });
  }

  deleteLock(key: Uint8Array): void {
    this.buffer.push({ kind: "delete", cf: CF_LOCK, key: Buffer.from(key) });
  }

  putValue(key: Uint8Array, value: Buffer): void {
    this.buffer.push({ kind: "put", cf: CF_DEFAULT, key: encodeKey(key, this.startTs), value });
  }

  deleteValue(key: Uint8Array): void {
    this.buffer.push({ kind: "delete", cf: CF_DEFAULT, key: encodeKey(key, this.startTs) });
  }

  /**
   * The value of `key` visible at startTs: the newest write with commit_ts <= startTs decides
   * (Put → its value, Delete → none); rollback records are not versions and are skipped.
   */
  async getValue(key: Uint8Array): Promise<Buffer | undefined> {
    const userKey = encodeBytes(key);
    const cursor = this.writeVersions();
    await cursor.seek(encodeKey(key, this.startTs));
    for (; cursor.valid && isVersionOf(cursor.key, userKey); await cursor.next()) {
      const write = Write.parse(cursor.value);
      if (write.kind === WriteKind.Rollback) continue;
      if (write.kind === WriteKind.Delete) return undefined;
      return await readCommittedValue(this.reader, key, write.startTs);
    }
    return undefined;
  }

  /** The write this txn (start_ts == startTs) left on `key`: its commit or its rollback record. */
  async currentWrite(key: Uint8Array): Promise<WriteAt | undefined> {
    const userKey = encodeBytes(key);
    const cursor = this.writeVersions();
    await cursor.seek(encodeKey(key, TsMax));
    for (; cursor.valid && isVersionOf(cursor.key, userKey); await cursor.next()) {
      const commitTs = decodeTimestamp(cursor.key);
      // commit_ts >= start_ts for every record of a txn, so older records cannot be ours.
      if (commitTs < this.startTs) return undefined;
      const write = Write.parse(cursor.value);
      if (write.startTs === this.startTs) return { write, commitTs };
    }
    return undefined;
  }

  /** The write record stored exactly at `commitTs` on `key` (of whichever txn), or undefined. */
  async writeAt(key: Uint8Array, commitTs: bigint): Promise<Write | undefined> {
    const bytes = await this.reader.getCF(CF_WRITE, encodeKey(key, commitTs));
    return bytes === undefined ? undefined : Write.parse(bytes);
  }

  /** The newest write on `key` of any txn (including rollback records), or undefined. */
  async mostRecentWrite(key: Uint8Array): Promise<WriteAt | undefined> {
    const userKey = encodeBytes(key);
    const cursor = this.writeVersions();
    await cursor.seek(encodeKey(key, TsMax));
    if (!cursor.valid || !isVersionOf(cursor.key, userKey)) return undefined;
    return { write: Write.parse(cursor.value), commitTs: decodeTimestamp(cursor.key) };
  }
}
