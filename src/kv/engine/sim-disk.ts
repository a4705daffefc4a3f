import type { Rng } from "../../util/random.js";
import type { BatchWriter, Db } from "./engine.js";
import { Engine, EngineOpenError, WriteBatch } from "./engine.js";
import type { SimDbOp as Op, SimDbSnapshot } from "./sim-db.js";
import { SimDb } from "./sim-db.js";
import { SimFileError, SimFiles } from "./sim-files.js";
import { TinyKvError } from "../../util/errors.js";

/**
 * A simulated disk for the deterministic simulation: engines in memory (sim-db.ts) with
 * LevelDB's durability model. A write with sync=true makes it and every write before it durable;
 * unsynced writes after the last sync live in the "page cache": a process crash keeps them, a
 * power loss keeps a seeded prefix of them and loses the rest (so what is lost is always a
 * suffix, in whole batches, as LevelDB drops a torn tail of its write-ahead log). No timers or
 * randomness of its own: latency goes through the injected `delay`, choices through the `Rng`
 * the simulator passes to `powerLoss`. Plain files (snapshot files) live next to the engines in
 * `files` (see sim-files.ts for their durability model) and share their crashes and power losses.
 */

/** What one write asks of the disk; the simulator's latency function sees it. */
export interface DiskWrite {
  file: string;
  sync: boolean;
  ops: number;
  bytes: number;
}

/** Faults the simulator switches on and off while the disk runs. */
export interface DiskFaults {
  /** Simulated ms a write takes before it lands (0 = at once). Needs `SimDiskOptions.delay`. */
  writeLatencyMs?: (write: DiskWrite) => number;
  /** Synced writes to the files it accepts fail with SyncFailedError. */
  failSync?: (file: string) => boolean;
  /** Writes to the plain files it accepts (paths such as "snap/gen_1_5_9.snap") fail with an I/O error. */
  failFileWrite?: (path: string) => boolean;
}

export interface SimDiskOptions {
  /** Names the disk in errors and paths, e.g. "store2". */
  name?: string;
  /**
   * Waits `ms` of simulated time, e.g. `(ms) => sleep(runtime, ms)` on the simulation's Runtime.
   * Only a write with latency calls it.
   */
  delay?: (ms: number) => Promise<void>;
  faults?: DiskFaults;
}

/**
 * What a power loss did to one file: how many unsynced batches an engine had, kept and lost (for
 * a plain file: unsynced bytes; for the directory entries: unsynced names).
 */
export interface PowerLossReport {
  file: string;
  unsynced: number;
  kept: number;
  lost: number;
}

/** An fsync failed. As LevelDB after a failed log sync, the engine refuses every later write until reopened. */
export class SyncFailedError extends TinyKvError {
  constructor(
    readonly path: string,
    readonly afterEarlierFailure = false,
  ) {
    super(
      afterEarlierFailure
        ? `${path}: write refused after an earlier fsync failure (reopen to recover)`
        : `${path}: fsync failed`,
    );
    this.name = "SyncFailedError";
  }
}

/** The engine's process crashed (or the power went) while a write was in flight or after it. */
export class EngineCrashedError extends TinyKvError {
  constructor(readonly path: string) {
    super(`${path}: the engine crashed; the write did not complete`);
    this.name = "EngineCrashedError";
  }
}

/** One LevelDB directory on the simulated disk. */
interface SimFile {
  readonly name: string;
  /** The durable entries, sorted, as of the last close or crash (empty while open). */
  image: Array<[Buffer, Buffer]>;
  /** Batches written after `image` (or after the open engine's durable view), oldest first; not yet synced. */
  pending: Op[][];
  engine: SimEngine | undefined;
}

export class SimDisk {
  readonly name: string;
  faults: DiskFaults;
  /** Plain files (snapshot files): `files.mount()` is a store's file layer. */
  readonly files: SimFiles;
  private readonly dbs = new Map<string, SimFile>();

  constructor(private readonly opts: SimDiskOptions = {}) {
    this.name = opts.name ?? "simdisk";
    this.faults = opts.faults ?? {};
    this.files = new SimFiles({
      name: this.name,
      latencyOf: (write) => this.latencyOf(write),
      // Without a delay hook (a unit test with no runtime) a file operation completes as a microtask.
      wait: (ms) => (this.opts.delay ? this.opts.delay(ms) : Promise.resolve()),
      syncFault: (file) =>
        this.faults.failSync?.(file) ? new SyncFailedError(`sim://${this.name}/${file}`) : undefined,
      writeFault: (path) =>
        this.faults.failFileWrite?.(path) ? new SimFileError("EIO", `sim://${this.name}/${path}`, "write") : undefined,
    });
  }

  /** Opens (or creates) a file from what survived; a second open of an open file fails as a LevelDB lock does. */
  async open(file: string): Promise<Engine> {
    const path = `sim://${this.name}/${file}`;
    let f = this.dbs.get(file);
    if (!f) {
      f = { name: file, image: [], pending: [], engine: undefined };
      this.dbs.set(file, f);
    }
    if (f.engine) throw new EngineOpenError(path, "it is locked by another process (simulated disk)");
    const db = new SimDb();
    if (f.image.length > 0) db.applyBatch(f.image.map(([key, value]) => ({ type: "put" as const, key, value })));
    for (const ops of f.pending) db.applyBatch(ops);
    // Recovery writes the replayed log into a synced table, as LevelDB's does: all of it is durable now.
    f.image = [];
    f.pending = [];
    const engine = new SimEngine(path, db, this, f);
    f.engine = engine;
    return engine;
  }

  /** The process dies: open engines close at once, in-flight writes fail; the page cache (unsynced writes) survives. */
  async crash(): Promise<void> {
    this.files.crash();
    for (const f of this.dbs.values()) await f.engine?.halt();
  }

  /**
   * The power goes: open engines crash and every file keeps only a seeded prefix of its
   * unsynced batches (anything from none to all of them). Files are visited in creation order,
   * so one rng sequence gives one outcome; the plain files come after the engines.
   */
  async powerLoss(rng: Rng): Promise<PowerLossReport[]> {
    await this.crash();
    const report: PowerLossReport[] = [];
    for (const f of this.dbs.values()) {
      const unsynced = f.pending.length;
      const kept = unsynced === 0 ? 0 : Math.floor(rng() * (unsynced + 1));
      f.pending.length = kept;
      report.push({ file: f.name, unsynced, kept, lost: unsynced - kept });
    }
    report.push(...this.files.powerLoss(rng));
    return report;
  }

  /** Batches written to `file` since its last sync: what a power loss now could lose. */
  unsyncedBatches(file: string): number {
    return this.dbs.get(file)?.pending.length ?? 0;
  }

  /** Open files whose engine refuses writes after a failed fsync (until it is reopened). */
  filesWithFailedSync(): string[] {
    return [...this.dbs.values()].filter((f) => f.engine?.syncFailed).map((f) => f.name);
  }

  /** Names of the engines' files on this disk, in creation order. */
  fileNames(): string[] {
    return [...this.dbs.keys()];
  }

  /** @internal How long a write waits, per the latency fault; 0 without one. */
  latencyOf(write: DiskWrite): number {
    const ms = this.faults.writeLatencyMs?.(write) ?? 0;
    if (ms > 0 && !this.opts.delay)
      throw new Error(`simulated disk ${this.name}: write latency set but no delay hook was given`);
    return ms;
  }

  /** @internal */
  delay(ms: number): Promise<void> {
    return this.opts.delay!(ms);
  }
}

/** An engine on the simulated disk: reads as any Engine; writes go through the disk's model and faults. */
class SimEngine extends Engine {
  /** The state a power loss keeps for sure: as of the last synced write. */
  private durable: SimDbSnapshot;
  /** Writes land one at a time in call order, as LevelDB's writer queue does. */
  private queue: Promise<void> = Promise.resolve();
  private failed: SyncFailedError | undefined;
  private crashed = false;
  private halting: Promise<void> | undefined;

  constructor(
    path: string,
    private readonly store: SimDb,
    private readonly disk: SimDisk,
    private readonly file: SimFile,
  ) {
    // SimDb answers the part of abstract-level's interface that Engine and its readers call.
    super(path, store as unknown as Db);
    this.durable = store.snapshot();
  }

  get syncFailed(): boolean {
    return this.failed !== undefined;
  }

  override newBatch(): WriteBatch {
    return new WriteBatch(new SimBatchWriter(this));
  }

  /** A clean close: writes in flight land first; unsynced ones stay in the page cache (LevelDB does not sync on close). */
  override async close(): Promise<void> {
    await this.queue;
    await this.halt();
  }

  /** Appends a batch in turn; resolves once it landed (and, with `sync`, is durable). */
  write(ops: Op[], sync: boolean, bytes: number): Promise<void> {
    const done = this.queue.then(() => this.land(ops, sync, bytes));
    // The next write waits for this one to finish, not to succeed: it checks the engine's state itself.
    this.queue = done.catch(() => undefined);
    return done;
  }

  private async land(ops: Op[], sync: boolean, bytes: number): Promise<void> {
    this.assertWritable();
    const latency = this.disk.latencyOf({ file: this.file.name, sync, ops: ops.length, bytes });
    if (latency > 0) {
      await this.disk.delay(latency);
      this.assertWritable();
    }
    if (sync && this.disk.faults.failSync?.(this.file.name)) {
      // The record reached the log but not surely the platter: it may or may not come back after a
      // restart (a clean crash keeps it; a power loss may drop it). It is not visible meanwhile.
      this.file.pending.push(ops);
      this.failed = new SyncFailedError(this.path);
      throw this.failed;
    }
    this.file.pending.push(ops);
    await this.store.batch(ops);
    if (this.crashed) throw new EngineCrashedError(this.path);
    if (sync) {
      const previous = this.durable;
      this.durable = this.store.snapshot();
      this.file.pending = [];
      await previous.close();
    }
  }

  private assertWritable(): void {
    if (this.crashed) throw new EngineCrashedError(this.path);
    if (this.failed) throw new SyncFailedError(this.path, true);
  }

  /** Stops the engine where it stands and moves its durable state back to the file. */
  halt(): Promise<void> {
    this.halting ??= this.doHalt();
    return this.halting;
  }

  private async doHalt(): Promise<void> {
    this.crashed = true;
    const image: Array<[Buffer, Buffer]> = [];
    for await (const entry of this.store.iterator({ snapshot: this.durable })) image.push(entry);
    this.file.image = image;
    this.file.engine = undefined;
    // Closing the store also closes the snapshots and cursors readers still hold: their next read fails.
    await this.store.close();
  }
}

/** Collects a batch's operations (copies: the disk keeps its own bytes) and hands them to the engine's write queue. */
class SimBatchWriter implements BatchWriter {
  private readonly ops: Op[] = [];
  private bytes = 0;

  constructor(private readonly engine: SimEngine) {}

  put(key: Buffer, value: Buffer): void {
    this.ops.push({ type: "put", key: Buffer.from(key), value: Buffer.from(value) });
    this.bytes += key.length + value.length;
  }

  del(key: Buffer): void {
    this.ops.push({ type: "del", key: Buffer.from(key) });
    this.bytes += key.length;
  }

  write(options: { sync: boolean }): Promise<void> {
    return this.engine.write(this.ops, options.sync, this.bytes);
  }

  async close(): Promise<void> {
    // Nothing was handed to the disk; dropping the collected operations is all there is to do.
  }
}
