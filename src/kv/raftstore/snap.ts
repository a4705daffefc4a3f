import { crc32 } from "node:zlib";
import { join } from "node:path";
import type { CfName, EngineSnapshot, FileLayer, FileWriter, WriteBatch } from "../engine/index.js";
import { ALL_CFS, realFileLayer } from "../engine/index.js";
import type { Region } from "../../proto/metapb.js";
import type { RaftSnapshotData } from "../../proto/raft_serverpb.js";
import { MAX_RAFT_ENTRY_MAX_SIZE } from "./config.js";
import { regionCursor } from "./keyspace.js";
import { TinyKvError } from "../../util/errors.js";

/**
 * Snapshot files. A region snapshot is a file of records `cf(1) | keyLen(4) | valueLen(4) | key | value`
 * for every key of the region's range in each CF, taken from one consistent kv engine snapshot.
 * Files are written and read as streams, so memory stays bounded whatever the region's size.
 * The sender keeps `gen_<region>_<term>_<index>.snap`; the receiver writes `rev_...`.
 * The files go through an injected FileLayer (the real file system, or the simulation's disk).
 *
 * Neither kind is fsynced: no file has to outlive the process that wrote it. A generated file
 * is only known to the in-memory state of its peer (lost with the process, regenerated on
 * demand); a received one is read into one synced kv batch before raft hears it is installed,
 * and files left by an earlier run are deleted at start. A power loss that tears either kind
 * costs disk space, never data.
 */
export interface SnapKey {
  regionId: bigint;
  term: bigint;
  index: bigint;
}

export class SnapshotError extends TinyKvError {
  constructor(
    readonly key: SnapKey,
    reason: string,
  ) {
    super(`snapshot of region ${key.regionId} at ${key.term}/${key.index}: ${reason}`, {
      context: { regionId: key.regionId, term: key.term },
    });
    this.name = "SnapshotError";
  }
}

/** What a receiver checks a snapshot file against: its size and CRC-32 (the sender's, in RaftSnapshotData). */
export interface SnapshotIntegrity {
  size: number;
  /** Undefined for a sender that did not record one: only the size is checked. */
  checksum: number | undefined;
}

/** The whole file is described by one SnapshotCFFile entry named FILE_ENTRY (the format has one file, not one per CF). */
const FILE_ENTRY = "all";

export function snapshotIntegrity(data: RaftSnapshotData): SnapshotIntegrity {
  const entry = data.meta?.cfFiles.find((f) => f.cf === FILE_ENTRY);
  return { size: Number(data.fileSize), checksum: entry?.checksum };
}

export function integrityMeta(integrity: SnapshotIntegrity): RaftSnapshotData["meta"] {
  return {
    cfFiles:
      integrity.checksum === undefined
        ? []
        : [{ cf: FILE_ENTRY, size: BigInt(integrity.size), checksum: integrity.checksum }],
  };
}

const HEADER_BYTES = 9;
/**
 * The most key and value bytes one record can hold: every pair a region stores was written by
 * one raft entry, and no setting lets an entry be bigger. A larger header is corrupt or hostile;
 * read on, it would make the reader hold (and copy, chunk after chunk) up to the whole file.
 */
const MAX_RECORD_BYTES = MAX_RAFT_ENTRY_MAX_SIZE;
/** Write and read in chunks of about this many bytes. */
const CHUNK_BYTES = 1024 * 1024;

export class SnapManager {
  private receiving = 0;

  constructor(
    readonly dir: string,
    private readonly files: FileLayer = realFileLayer,
  ) {
    files.mkdir(dir);
  }

  genPath(k: SnapKey): string {
    return join(this.dir, `gen_${k.regionId}_${k.term}_${k.index}.snap`);
  }

  revPath(k: SnapKey): string {
    return join(this.dir, `rev_${k.regionId}_${k.term}_${k.index}.snap`);
  }

  /** Writes the region's data from `snap` into the generation file; returns its size and checksum. */
  async generate(k: SnapKey, snap: EngineSnapshot, region: Region): Promise<SnapshotIntegrity & { checksum: number }> {
    const path = this.genPath(k);
    const out = await this.files.create(path);
    let size = 0;
    let checksum = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const chunk = Buffer.concat(pending, pendingBytes);
      checksum = crc32(chunk, checksum);
      pending = [];
      pendingBytes = 0;
      await out.write(chunk);
    };
    try {
      for (let cfIndex = 0; cfIndex < ALL_CFS.length; cfIndex++) {
        const cursor = regionCursor(snap, ALL_CFS[cfIndex]!, region);
        try {
          await cursor.seek(region.startKey);
          while (cursor.valid) {
            const header = Buffer.allocUnsafe(HEADER_BYTES);
            header[0] = cfIndex;
            header.writeUInt32BE(cursor.key.length, 1);
            header.writeUInt32BE(cursor.value.length, 5);
            pending.push(header, cursor.key, cursor.value);
            const n = HEADER_BYTES + cursor.key.length + cursor.value.length;
            pendingBytes += n;
            size += n;
            if (pendingBytes >= CHUNK_BYTES) await flush();
            await cursor.next();
          }
        } finally {
          await cursor.close();
        }
      }
      await flush();
      await out.close();
    } catch (err) {
      await out.abort();
      this.files.remove(path);
      throw err;
    }
    return { size, checksum };
  }

  /** The bytes of a generated snapshot, as chunks, for the transport. */
  async *readGenerated(k: SnapKey): AsyncGenerator<Buffer> {
    yield* this.files.read(this.genPath(k), CHUNK_BYTES);
  }

  /**
   * Saves received chunks into the receive file, checking them against what the sender declared:
   * more bytes than declared stop the stream at once, fewer or a checksum mismatch refuse the
   * file. Nothing unverified is ever renamed into place.
   */
  async receive(
    k: SnapKey,
    chunks: AsyncIterable<Buffer>,
    expected: SnapshotIntegrity,
    accept: (cf: CfName, key: Buffer) => boolean,
  ): Promise<void> {
    // Our senders always record a checksum; without one a damaged file could only fail at install.
    if (expected.checksum === undefined) throw new SnapshotError(k, "the sender declared no checksum");
    // Every record is parsed and range-checked now, so an accepted file can only fail to install on a disk error.
    const records = new RecordReader(k);
    // Written aside and renamed into place: a second copy of the same snapshot arriving while
    // the first is being installed must not truncate the file under the installer. The counter
    // alone makes the name unique: a store deletes every leftover at start, before it receives
    // (and no pid in it, so one seed of the simulation names its files alike in every run).
    const path = this.revPath(k);
    const tmp = `${path}.${++this.receiving}.tmp`;
    const out: FileWriter = await this.files.create(tmp);
    let size = 0;
    let checksum = 0;
    try {
      for await (const chunk of chunks) {
        size += chunk.length;
        if (size > expected.size) throw new SnapshotError(k, `more data than the declared ${expected.size} bytes`);
        checksum = crc32(chunk, checksum);
        for (const r of records.push(chunk)) {
          if (!accept(r.cf, r.key)) throw new SnapshotError(k, `a ${r.cf} key outside the snapshot's region`);
        }
        await out.write(chunk);
      }
      records.finish();
      await out.close();
      if (size !== expected.size)
        throw new SnapshotError(k, `received ${size} bytes, the sender declared ${expected.size}`);
      if (checksum !== expected.checksum)
        throw new SnapshotError(k, `checksum mismatch (crc32 ${checksum}, declared ${expected.checksum})`);
      this.files.rename(tmp, path);
    } catch (err) {
      await out.abort();
      this.files.remove(tmp);
      throw err;
    }
  }

  hasReceived(k: SnapKey): boolean {
    return this.files.stat(this.revPath(k)) !== undefined;
  }

  removeReceived(k: SnapKey): void {
    this.files.remove(this.revPath(k));
  }

  /** Received files left by an earlier run: never installed (the sender resends what is still needed). */
  removeAllReceived(): void {
    for (const name of this.files.list(this.dir)) {
      if (/^rev_\d+_\d+_\d+\.snap(\..*\.tmp)?$/.test(name)) this.files.remove(join(this.dir, name));
    }
  }

  /** Reads a received snapshot's records and adds them to `kvWb` as puts. */
  async loadInto(k: SnapKey, kvWb: WriteBatch): Promise<number> {
    if (!this.hasReceived(k)) throw new SnapshotError(k, "data file was not received");
    const records = new RecordReader(k);
    let n = 0;
    for await (const raw of this.files.read(this.revPath(k), CHUNK_BYTES)) {
      for (const r of records.push(raw)) {
        kvWb.put(r.cf, Buffer.from(r.key), Buffer.from(r.value));
        n++;
      }
    }
    records.finish();
    return n;
  }

  /** Removes snapshot files of a region other than `keep` (and, given `maxIndex`, only those at or below it). */
  cleanup(regionId: bigint, keep?: SnapKey, maxIndex?: bigint, only?: "gen" | "rev"): void {
    const keepNames = keep ? new Set([this.genPath(keep), this.revPath(keep)]) : new Set<string>();
    for (const name of this.files.list(this.dir)) {
      const m = /^(gen|rev)_(\d+)_(\d+)_(\d+)\.snap$/.exec(name);
      if (!m || BigInt(m[2]!) !== regionId) continue;
      if (maxIndex !== undefined && BigInt(m[4]!) > maxIndex) continue;
      if (only !== undefined && m[1] !== only) continue;
      const path = join(this.dir, name);
      if (!keepNames.has(path)) this.files.remove(path);
    }
  }
}

/** Parses `cf | keyLen | valueLen | key | value` records from chunks that may split them anywhere. */
class RecordReader {
  private carry: Buffer = Buffer.alloc(0);

  constructor(private readonly k: SnapKey) {}

  *push(chunk: Buffer): Generator<{ cf: CfName; key: Buffer; value: Buffer }> {
    const buf: Buffer = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= HEADER_BYTES) {
      const cf = ALL_CFS[buf[off]!] as CfName | undefined;
      if (!cf) throw new SnapshotError(this.k, `corrupt record: CF index ${buf[off]}`);
      const kl = buf.readUInt32BE(off + 1);
      const vl = buf.readUInt32BE(off + 5);
      if (kl + vl > MAX_RECORD_BYTES)
        throw new SnapshotError(this.k, `corrupt record: ${kl + vl} bytes of key and value, over ${MAX_RECORD_BYTES}`);
      if (buf.length - off < HEADER_BYTES + kl + vl) break;
      yield {
        cf,
        key: buf.subarray(off + HEADER_BYTES, off + HEADER_BYTES + kl),
        value: buf.subarray(off + HEADER_BYTES + kl, off + HEADER_BYTES + kl + vl),
      };
      off += HEADER_BYTES + kl + vl;
    }
    this.carry = buf.subarray(off);
  }

  finish(): void {
    if (this.carry.length > 0)
      throw new SnapshotError(this.k, `truncated data file (${this.carry.length} stray bytes)`);
  }
}
