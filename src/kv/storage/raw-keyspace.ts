import type { CfCursor, CfName } from "../engine/index.js";
import { CF_DEFAULT, CF_LOCK, CF_WRITE, RAW_CF_DEFAULT, RAW_CF_LOCK, RAW_CF_WRITE } from "../engine/index.js";
import type { Context } from "../../proto/kvrpcpb.js";
import { InvalidArgumentError } from "./errors.js";
import type { Modify, Storage, StorageReader } from "./storage.js";

const RAW_CFS = new Map<CfName, CfName>([
  [CF_DEFAULT, RAW_CF_DEFAULT],
  [CF_LOCK, RAW_CF_LOCK],
  [CF_WRITE, RAW_CF_WRITE],
]);

/** The engine CF where the raw API keeps what clients call `cf` (engine/cf.ts). */
export function rawCf(cf: CfName): CfName {
  const raw = RAW_CFS.get(cf);
  if (!raw)
    throw new InvalidArgumentError(
      `column family ${JSON.stringify(cf)} is not a client CF (expected one of ${[...RAW_CFS.keys()].join(", ")})`,
    );
  return raw;
}

/**
 * The raw API's view of a Storage: the same keys and CF names as the client's, kept in the raw
 * CFs, so raw data and Percolator's data never share a key space (and a raw key is never routed
 * as an encoded MVCC key: src/kv/raftstore/keyspace.ts). Transactional commands use the Storage
 * itself: their CFs are TinyKV's. The view is applied in one place, RawHandlers.
 */
export function rawKeyspace(storage: Storage): Storage {
  return new RawKeyspaceStorage(storage);
}

class RawKeyspaceStorage implements Storage {
  constructor(private readonly inner: Storage) {}

  start(): Promise<void> {
    return this.inner.start();
  }

  stop(): Promise<void> {
    return this.inner.stop();
  }

  write(ctx: Context | undefined, batch: Modify[]): Promise<void> {
    return this.inner.write(
      ctx,
      batch.map((m): Modify => ({ ...m, cf: rawCf(m.cf) })),
    );
  }

  async reader(ctx: Context | undefined): Promise<StorageReader> {
    return new RawKeyspaceReader(await this.inner.reader(ctx));
  }
}

class RawKeyspaceReader implements StorageReader {
  constructor(private readonly inner: StorageReader) {}

  getCF(cf: CfName, key: Uint8Array): Promise<Buffer | undefined> {
    return this.inner.getCF(rawCf(cf), key);
  }

  iterCF(cf: CfName, opts?: { reverse?: boolean }): CfCursor {
    return this.inner.iterCF(rawCf(cf), opts);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
