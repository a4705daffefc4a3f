import type { CfName, CfCursor, EngineSnapshot } from "../engine/index.js";
import { Engine } from "../engine/index.js";
import type { Context } from "../../proto/kvrpcpb.js";
import { ensureKeyLayout } from "../raftstore/keyspace.js";
import type { Modify, Storage, StorageReader } from "./storage.js";

/** Storage on one local LevelDB, no replication: lab 1, and a handy single-node mode. */
export class StandaloneStorage implements Storage {
  private engine: Engine | undefined;

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

  async write(_ctx: Context | undefined, batch: Modify[]): Promise<void> {
    const wb = this.kv.newBatch();
    for (const m of batch) {
      if (m.kind === "put") wb.put(m.cf, m.key, m.value);
      else wb.delete(m.cf, m.key);
    }
    await wb.write(true);
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

  iterCF(cf: CfName): CfCursor {
    return this.snap.cursor(cf, this.lower, this.upper);
  }

  close(): Promise<void> {
    return this.snap.close();
  }
}
