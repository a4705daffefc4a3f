/**
 * Lab 4 fixtures: a real tinykv-server (StandaloneStorage in a temp dir, gRPC on a free port) and
 * helpers that seed and inspect the three CFs directly through the storage, as the course's
 * builder does with its MemStorage.
 */
import * as grpc from "@grpc/grpc-js";
import { expect } from "vitest";
import type { CfName } from "../../src/kv/engine/index.js";
import { CF_DEFAULT, CF_LOCK, CF_WRITE } from "../../src/kv/engine/index.js";
import type { StandaloneStorage } from "../../src/kv/storage/index.js";
import type { StandaloneNode } from "../../src/cli/standalone-node.js";
import { startStandaloneServer } from "../../src/cli/standalone-node.js";
import { TinyKvRpc } from "../../src/client/kv-rpc.js";
import { encodeKey, Lock, Write, WriteKind } from "../../src/txn/index.js";
import { silentLogger } from "../../src/util/logger.js";
import { tempDir } from "../harness/wait.js";

export interface TxnServer {
  storage: StandaloneStorage;
  client: TinyKvRpc;
  addr: string;
  stop(): Promise<void>;
}

export async function startTxnServer(): Promise<TxnServer> {
  const dir = tempDir("tinykv-lab4-");
  let node: StandaloneNode;
  try {
    node = await startStandaloneServer({ path: dir.path, addr: "127.0.0.1:0", log: silentLogger });
  } catch (err) {
    dir.cleanup();
    throw err;
  }
  const addr = `127.0.0.1:${node.port}`;
  const client = new TinyKvRpc(addr);
  return {
    storage: node.storage,
    client,
    addr,
    async stop() {
      client.close();
      await node.stop();
      dir.cleanup();
    },
  };
}

export const b = (...bytes: number[]): Buffer => Buffer.from(bytes);

/** One stored entry: CF, key (as stored: raw for lock, encoded for default/write), value. */
export interface Entry {
  cf: CfName;
  key: Buffer;
  value: Buffer;
}

/** Seeds data the way a committed or in-flight txn would have left it. */
export class Seeder {
  constructor(private readonly storage: StandaloneStorage) {}

  async put(entries: Entry[]): Promise<void> {
    await this.storage.write(
      undefined,
      entries.map((e) => ({ kind: "put" as const, cf: e.cf, key: e.key, value: e.value })),
    );
  }

  value(key: Buffer, startTs: bigint, value: Buffer): Entry {
    return { cf: CF_DEFAULT, key: encodeKey(key, startTs), value };
  }
  lock(key: Buffer, primary: Buffer, ts: bigint, ttl = 0n, kind = WriteKind.Put): Entry {
    return { cf: CF_LOCK, key, value: new Lock(primary, ts, ttl, kind).toBytes() };
  }
  write(key: Buffer, commitTs: bigint, startTs: bigint, kind = WriteKind.Put): Entry {
    return { cf: CF_WRITE, key: encodeKey(key, commitTs), value: new Write(startTs, kind).toBytes() };
  }
  /** A committed Put: the value at startTs plus its write record at commitTs. */
  committed(key: Buffer, value: Buffer, startTs: bigint, commitTs: bigint): Entry[] {
    return [this.value(key, startTs, value), this.write(key, commitTs, startTs)];
  }
  /** A prewritten Put: the value at ts plus its lock. */
  prewritten(key: Buffer, primary: Buffer, value: Buffer, ts: bigint, ttl = 0n): Entry[] {
    return [this.value(key, ts, value), this.lock(key, primary, ts, ttl)];
  }
}

/** Every entry of a CF, in key order, read from a fresh snapshot. */
export async function dumpCf(storage: StandaloneStorage, cf: CfName): Promise<Entry[]> {
  const reader = await storage.reader(undefined);
  const cursor = reader.iterCF(cf);
  const out: Entry[] = [];
  try {
    for (await cursor.seek(Buffer.alloc(0)); cursor.valid; await cursor.next()) {
      out.push({ cf, key: Buffer.from(cursor.key), value: Buffer.from(cursor.value) });
    }
  } finally {
    await cursor.close();
    await reader.close();
  }
  return out;
}

/** Counts of entries in (default, lock, write), like the course's `assertLens`. */
export async function cfLens(storage: StandaloneStorage): Promise<[number, number, number]> {
  const [d, l, w] = await Promise.all([CF_DEFAULT, CF_LOCK, CF_WRITE].map((cf) => dumpCf(storage, cf as CfName)));
  return [d!.length, l!.length, w!.length];
}

export async function getCf(storage: StandaloneStorage, cf: CfName, key: Buffer): Promise<Buffer | undefined> {
  const reader = await storage.reader(undefined);
  try {
    return await reader.getCF(cf, key);
  } finally {
    await reader.close();
  }
}

/** Deletes everything in the three CFs, so each test starts from an empty store. */
export async function clearAll(storage: StandaloneStorage): Promise<void> {
  for (const cf of [CF_DEFAULT, CF_LOCK, CF_WRITE] as CfName[]) {
    const entries = await dumpCf(storage, cf);
    if (entries.length > 0)
      await storage.write(
        undefined,
        entries.map((e) => ({ kind: "delete" as const, cf, key: e.key })),
      );
  }
}

/** Asserts the call failed with gRPC INVALID_ARGUMENT and a message matching `msg`. */
export async function expectInvalidArgument(p: Promise<unknown>, msg: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e as grpc.ServiceError,
  );
  expect(err, "expected the call to fail with INVALID_ARGUMENT").toBeDefined();
  expect(err!.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(err!.details).toMatch(msg);
}
