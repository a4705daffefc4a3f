import type { CfName, CfCursor, EngineSnapshot, WriteBatch } from "../engine/index.js";
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
  /** The last range delete queued (it runs alone: see write()), and the other writes in flight. */
  private exclusive: Promise<void> = Promise.resolve();
  private readonly inFlight = new Set<Promise<unknown>>();
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

  /**
   * A range delete reads the keys it deletes from a snapshot, so no other write may land between
   * that read and its batch: it runs alone, after the writes in flight. Other writes run
   * concurrently (LevelDB groups their fsyncs), after any range delete queued before them, each
   * holding the latches of its keys so a conditional write's compare and write are not split.
   */
  async write(_ctx: Context | undefined, batch: Modify[]): Promise<void> {
    if (!batch.some((m) => m.kind === "deleteRange")) {
      const keys = batch.flatMap((m) => (m.kind === "deleteRange" ? [] : [latchKey(m.cf, m.key)]));
      return this.alongside(keys, () => this.writeBatch(batch));
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

  async conditionalWrite(_ctx: Context | undefined, cw: ConditionalWrite): Promise<ConditionalOutcome> {
    const keys = [latchKey(cw.cf, cw.key)];
    for (const m of cw.writes) if (m.kind !== "deleteRange") keys.push(latchKey(m.cf, m.key));
    if (cw.expiry) keys.push(latchKey(cw.expiry.cf, cw.key));
    return this.alongside(keys, async () => {
      const stored = await this.kv.get(cw.cf, cw.key);
      const previous = cw.expiry ? liveValue(stored, await this.kv.get(cw.expiry.cf, cw.key), cw.expiry.nowMs) : stored;
      const succeed = conditionHolds(previous, cw.expected === undefined, cw.expected ?? Buffer.alloc(0));
      if (succeed) await this.writeBatch(cw.writes);
      return { succeed, previous };
    });
  }

  /** Runs `work` with the latches of `keys`, concurrently with other such work, never during a range delete. */
  private async alongside<T>(keys: string[], work: () => Promise<T>): Promise<T> {
    for (;;) {
      const exclusive = this.exclusive;
      await exclusive;
      if (exclusive === this.exclusive) break; // no range delete queued meanwhile
    }
    // Registered in the same synchronous step as the check above: a range delete queued later sees it.
    const running = (async () => {
      const release = await this.latches.acquire(keys);
      try {
        return await work();
      } finally {
        release();
      }
    })();
    this.inFlight.add(running);
    try {
      return await running;
    } finally {
      this.inFlight.delete(running);
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
