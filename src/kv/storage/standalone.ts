import type { CfName, CfCursor, EngineSnapshot, WriteBatch } from "../engine/index.js";
import { Engine } from "../engine/index.js";
import type { Context } from "../../proto/kvrpcpb.js";
import { ensureKeyLayout } from "../raftstore/keyspace.js";
import type { Modify, Storage, StorageReader } from "./storage.js";

/** Storage on one local LevelDB, no replication: lab 1, and a handy single-node mode. */
export class StandaloneStorage implements Storage {
  private engine: Engine | undefined;
  /** The write in progress (writes run one at a time: see write()). */
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly path: string) {}

  async start(): Promise<void> {
    const engine = await Engine.open(this.path);
    try {
      await ensureKeyLayout(engine);
    } catch (err) {
      await engine.close();
      throw err;
    }
    this.engine = engine;
  }

  async stop(): Promise<void> {
    await this.engine?.close();
    this.engine = undefined;
  }

  private get kv(): Engine {
    if (!this.engine) throw new Error(`standalone storage at ${this.path} is not started`);
    return this.engine;
  }

  /**
   * Range deletes read the keys they delete from a snapshot taken here; writes are serialized, so
   * no write of this storage lands between that read and the batch (one writer at a time).
   */
  async write(_ctx: Context | undefined, batch: Modify[]): Promise<void> {
    const prev = this.writing;
    let done!: () => void;
    this.writing = new Promise<void>((resolve) => (done = resolve));
    try {
      await prev;
      const wb = this.kv.newBatch();
      for (const m of batch) {
        if (m.kind === "put") wb.put(m.cf, m.key, m.value);
        else if (m.kind === "delete") wb.delete(m.cf, m.key);
        else await this.deleteRangeInto(wb, m.cf, m.start, m.end);
      }
      await wb.write(true);
    } finally {
      done();
    }
  }

  private async deleteRangeInto(wb: WriteBatch, cf: CfName, start: Buffer, end: Buffer): Promise<void> {
    const snap = this.kv.snapshot();
    const cursor = snap.cursor(cf, start, end);
    try {
      await cursor.seek(start);
      while (cursor.valid) {
        wb.delete(cf, cursor.key);
        await cursor.next();
      }
    } finally {
      await cursor.close();
      await snap.close();
    }
  }

  async reader(_ctx: Context | undefined): Promise<StorageReader> {
    return new SnapshotReader(this.kv.snapshot());
  }
}

/** A reader over an engine snapshot, optionally limited to a key range (a region). */
export class SnapshotReader implements StorageReader {
  constructor(
    private readonly snap: EngineSnapshot,
    private readonly lower: Uint8Array = Buffer.alloc(0),
    private readonly upper: Uint8Array = Buffer.alloc(0),
  ) {}

  getCF(cf: CfName, key: Uint8Array): Promise<Buffer | undefined> {
    return this.snap.get(cf, key);
  }

  iterCF(cf: CfName, opts: { reverse?: boolean } = {}): CfCursor {
    return this.snap.cursor(cf, this.lower, this.upper, undefined, opts.reverse);
  }

  close(): Promise<void> {
    return this.snap.close();
  }
}
