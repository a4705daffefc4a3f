import type { CfName, CfCursor, EngineSnapshot, WriteBatch } from "../engine/index.js";
import { Engine } from "../engine/index.js";
import type { Context } from "../../proto/kvrpcpb.js";
import { ensureKeyLayout } from "../raftstore/keyspace.js";
import type { Modify, Storage, StorageReader } from "./storage.js";

/** Storage on one local LevelDB, no replication: lab 1, and a handy single-node mode. */
export class StandaloneStorage implements Storage {
  private engine: Engine | undefined;
  /** The last range delete queued (it runs alone: see write()), and the other writes in flight. */
  private exclusive: Promise<void> = Promise.resolve();
  private readonly inFlight = new Set<Promise<void>>();

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
   * A range delete reads the keys it deletes from a snapshot, so no other write may land between
   * that read and its batch: it runs alone, after the writes in flight. Other writes run
   * concurrently (LevelDB groups their fsyncs), after any range delete queued before them.
   */
  async write(_ctx: Context | undefined, batch: Modify[]): Promise<void> {
    if (!batch.some((m) => m.kind === "deleteRange")) {
      for (;;) {
        const exclusive = this.exclusive;
        await exclusive;
        if (exclusive === this.exclusive) break; // no range delete queued meanwhile
      }
      // Registered in the same synchronous step as the check above: a range delete queued later sees it.
      const writing = this.writeBatch(batch);
      this.inFlight.add(writing);
      try {
        await writing;
      } finally {
        this.inFlight.delete(writing);
      }
      return;
    }
    const prev = this.exclusive;
    let done!: () => void;
    this.exclusive = new Promise<void>((resolve) => (done = resolve));
    try {
      await prev;
      await Promise.allSettled([...this.inFlight]);
      await this.writeBatch(batch);
    } finally {
      done();
    }
  }

  private async writeBatch(batch: Modify[]): Promise<void> {
    const wb = this.kv.newBatch();
    for (const m of batch) {
      if (m.kind === "put") wb.put(m.cf, m.key, m.value);
      else if (m.kind === "delete") wb.delete(m.cf, m.key);
      else await this.deleteRangeInto(wb, m.cf, m.start, m.end);
    }
    await wb.write(true);
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
