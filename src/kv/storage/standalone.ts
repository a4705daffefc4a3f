import type { CfName, CfCursor, EngineSnapshot } from "../engine/index.js";
import { cfKey, Engine } from "../engine/index.js";
import { conditionHolds, liveValue } from "../raftstore/conditional-write.js";
import { KeyLatches } from "./key-latches.js";
import type { Context } from "../../proto/kvrpcpb.js";
import { ensureKeyLayout } from "../raftstore/keyspace.js";
import type { ConditionalOutcome, ConditionalWrite, Modify, Storage, StorageReader } from "./storage.js";

function latchKey(cf: CfName, key: Uint8Array): string {
  return cfKey(cf, key).toString("latin1");
}

/** Storage on one local LevelDB, no replication: lab 1, and a handy single-node mode. */
export class StandaloneStorage implements Storage {
  private engine: Engine | undefined;
  /** A conditional write and the plain writes of its keys take turns (no raft log orders them here). */
  private readonly latches = new KeyLatches();

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
    const release = await this.latches.acquire(batch.map((m) => latchKey(m.cf, m.key)));
    try {
      await this.writeBatch(batch);
    } finally {
      release();
    }
  }

  private async writeBatch(batch: Modify[]): Promise<void> {
    const wb = this.kv.newBatch();
    for (const m of batch) {
      if (m.kind === "put") wb.put(m.cf, m.key, m.value);
      else wb.delete(m.cf, m.key);
    }
    await wb.write(true);
  }

  async conditionalWrite(_ctx: Context | undefined, cw: ConditionalWrite): Promise<ConditionalOutcome> {
    const keys = [latchKey(cw.cf, cw.key), ...cw.writes.map((m) => latchKey(m.cf, m.key))];
    if (cw.expiry) keys.push(latchKey(cw.expiry.cf, cw.key));
    const release = await this.latches.acquire(keys);
    try {
      const stored = await this.kv.get(cw.cf, cw.key);
      const previous = cw.expiry ? liveValue(stored, await this.kv.get(cw.expiry.cf, cw.key), cw.expiry.nowMs) : stored;
      const succeed = conditionHolds(previous, cw.expected === undefined, cw.expected ?? Buffer.alloc(0));
      if (succeed) await this.writeBatch(cw.writes);
      return { succeed, previous };
    } finally {
      release();
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

  iterCF(cf: CfName): CfCursor {
    return this.snap.cursor(cf, this.lower, this.upper);
  }

  close(): Promise<void> {
    return this.snap.close();
  }
}
