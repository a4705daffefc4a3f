import { mkdir } from "node:fs/promises";
import { ClassicLevel } from "classic-level";

/** The tiny key-value surface the scheduler's metadata needs. */
export interface MetaKV {
  get(key: string): Promise<Buffer | undefined>;
  /** Applies puts and deletes atomically; `sync` fsyncs before resolving. */
  write(puts: ReadonlyArray<readonly [string, Buffer]>, dels: readonly string[], sync: boolean): Promise<void>;
  scanPrefix(prefix: string): Promise<Array<[string, Buffer]>>;
  close(): Promise<void>;
}

/** Another process holds the LevelDB lock of the data dir. */
export class DataDirLockedError extends Error {
  constructor(readonly dir: string) {
    super(`data dir ${dir} is locked by another process (is another tinyscheduler running?)`);
    this.name = "DataDirLockedError";
  }
}

/**
 * Opens (creating) the LevelDB `<dataDir>/<name>` with string keys and Buffer values; another
 * process holding it is a DataDirLockedError naming the data dir.
 */
export async function openSchedulerLevel(dataDir: string, name: string): Promise<ClassicLevel<string, Buffer>> {
  await mkdir(dataDir, { recursive: true });
  const db = new ClassicLevel<string, Buffer>(`${dataDir}/${name}`, { keyEncoding: "utf8", valueEncoding: "buffer" });
  try {
    await db.open();
  } catch (err) {
    const e = err as { code?: string; cause?: { code?: string } };
    if (e.code === "LEVEL_LOCKED" || e.cause?.code === "LEVEL_LOCKED") throw new DataDirLockedError(dataDir);
    throw err;
  }
  return db;
}

/** classic-level under `<dataDir>/meta`. */
export class LevelMetaKV implements MetaKV {
  private constructor(private readonly db: ClassicLevel<string, Buffer>) {}

  static async open(dataDir: string): Promise<LevelMetaKV> {
    return new LevelMetaKV(await openSchedulerLevel(dataDir, "meta"));
  }

  async get(key: string): Promise<Buffer | undefined> {
    return (await this.db.get(key)) ?? undefined;
  }

  async write(puts: ReadonlyArray<readonly [string, Buffer]>, dels: readonly string[], sync: boolean): Promise<void> {
    const batch = this.db.batch();
    for (const [k, v] of puts) batch.put(k, v);
    for (const k of dels) batch.del(k);
    await batch.write({ sync });
  }

  async scanPrefix(prefix: string): Promise<Array<[string, Buffer]>> {
    const out: Array<[string, Buffer]> = [];
    for await (const [k, v] of this.db.iterator({ gte: prefix, lt: prefix + "\xff" })) out.push([k, v]);
    return out;
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

/** In-memory MetaKV for tests; `reopen()` simulates a restart over the same contents. */
export class MemoryMetaKV implements MetaKV {
  private readonly data = new Map<string, Buffer>();

  async get(key: string): Promise<Buffer | undefined> {
    return this.data.get(key);
  }

  async write(puts: ReadonlyArray<readonly [string, Buffer]>, dels: readonly string[]): Promise<void> {
    for (const [k, v] of puts) this.data.set(k, Buffer.from(v));
    for (const k of dels) this.data.delete(k);
  }

  async scanPrefix(prefix: string): Promise<Array<[string, Buffer]>> {
    return [...this.data.entries()].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : 1));
  }

  async close(): Promise<void> {}
}
