/**
 * Extensions to TinyKV's lab 4 server: KvTxnHeartBeat (TiKV's rpc) keeps a primary lock alive;
 * lock TTLs are capped and timestamps the TSO cannot have issued are refused, so every lock can
 * end; large resolves are written in batches.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CF_LOCK } from "../../src/kv/engine/index.js";
import { MAX_KEY_BYTES, TxnHandlers } from "../../src/kv/server/index.js";
import type { Modify, Storage } from "../../src/kv/storage/index.js";
import { Action, Op } from "../../src/proto/kvrpcpb.js";
import { Lock, MAX_LOCK_TTL_MS, RESOLVE_LOCK_BATCH_KEYS, TsMax } from "../../src/txn/index.js";
import type { TxnServer } from "./txn-server.js";
import { b, cfLens, clearAll, expectInvalidArgument, getCf, Seeder, startTxnServer } from "./txn-server.js";

let srv: TxnServer;
let seed: Seeder;

beforeAll(async () => {
  srv = await startTxnServer();
  seed = new Seeder(srv.storage);
});
beforeEach(() => clearAll(srv.storage));
afterAll(() => srv.stop());

/** A timestamp as the TSO would issue it `ms` from now (negative: in the past). */
const tsIn = (ms: number) => BigInt(Date.now() + ms) << 18n;
const put = (key: Buffer, value: Buffer) => ({ op: Op.Put, key, value });

describe("KvTxnHeartBeat", () => {
  it("extends the primary lock's TTL, so a CheckTxnStatus past the old TTL finds it alive", async () => {
    const startVersion = tsIn(-2000);
    expect(
      (await srv.client.kvPrewrite({ startVersion, mutations: [put(b(1), b(10))], primaryLock: b(1), lockTtl: 1000n }))
        .errors,
    ).toEqual([]);

    const beat = await srv.client.kvTxnHeartBeat({ primaryLock: b(1), startVersion, adviseLockTtl: 60_000n });
    expect(beat.error).toBeUndefined();
    expect(beat.lockTtl).toBe(60_000n);
    expect(Lock.parse((await getCf(srv.storage, CF_LOCK, b(1)))!).ttl).toBe(60_000n);

    const status = await srv.client.kvCheckTxnStatus({ primaryKey: b(1), lockTs: startVersion, currentTs: tsIn(0) });
    expect(status.action, "2 s after start, a 1 s TTL would have expired").toBe(Action.NoAction);
    expect(status.lockTtl).toBe(60_000n);

    const smaller = await srv.client.kvTxnHeartBeat({ primaryLock: b(1), startVersion, adviseLockTtl: 5000n });
    expect(smaller.lockTtl, "a heartbeat never shortens a TTL").toBe(60_000n);
  });

  it("answers TxnNotFound once the txn is committed, or when it never locked the key", async () => {
    const startVersion = tsIn(-10);
    await srv.client.kvPrewrite({ startVersion, mutations: [put(b(1), b(10))], primaryLock: b(1), lockTtl: 1000n });
    expect(
      (await srv.client.kvCommit({ startVersion, commitVersion: startVersion + 1n, keys: [b(1)] })).error,
    ).toBeUndefined();
    const afterCommit = await srv.client.kvTxnHeartBeat({ primaryLock: b(1), startVersion, adviseLockTtl: 5000n });
    expect(afterCommit.error?.txnNotFound).toEqual({ startTs: startVersion, primaryKey: b(1) });
    expect(afterCommit.error?.abort).toMatch(/committed or rolled back/);

    await seed.put(seed.prewritten(b(2), b(2), b(20), startVersion + 5n, 1000n));
    const otherTxn = await srv.client.kvTxnHeartBeat({ primaryLock: b(2), startVersion, adviseLockTtl: 5000n });
    expect(otherTxn.error?.txnNotFound, "another txn's lock is not ours to extend").toBeDefined();
    expect(Lock.parse((await getCf(srv.storage, CF_LOCK, b(2)))!).ttl).toBe(1000n);
  });

  it("refuses bad input with INVALID_ARGUMENT", async () => {
    await expectInvalidArgument(
      srv.client.kvTxnHeartBeat({ primaryLock: b(), startVersion: tsIn(0), adviseLockTtl: 1n }),
      /primary_lock must not be empty/,
    );
    await expectInvalidArgument(
      srv.client.kvTxnHeartBeat({ primaryLock: b(1), startVersion: 0n, adviseLockTtl: 1n }),
      /start_version/,
    );
    await expectInvalidArgument(
      srv.client.kvTxnHeartBeat({ primaryLock: b(1), startVersion: tsIn(0), adviseLockTtl: MAX_LOCK_TTL_MS + 1n }),
      /advise_lock_ttl .* over the maximum lock TTL/,
    );
  });
});

describe("bounds on lock TTLs and timestamps", () => {
  const future = TsMax;

  it("a lock TTL over the cap is refused; the cap itself is accepted", async () => {
    await expectInvalidArgument(
      srv.client.kvPrewrite({ startVersion: tsIn(0), mutations: [put(b(1), b(1))], primaryLock: b(1), lockTtl: TsMax }),
      /lock_ttl 18446744073709551615 ms is over the maximum lock TTL of 3600000 ms/,
    );
    expect(await cfLens(srv.storage)).toEqual([0, 0, 0]);
    const ok = await srv.client.kvPrewrite({
      startVersion: tsIn(0),
      mutations: [put(b(1), b(1))],
      primaryLock: b(1),
      lockTtl: MAX_LOCK_TTL_MS,
    });
    expect(ok.errors).toEqual([]);
  });

  it("every timestamp a request would write must be one the TSO could have issued", async () => {
    const notIssued = /is not a timestamp the TSO has issued/;
    const now = tsIn(0);
    await expectInvalidArgument(
      srv.client.kvPrewrite({ startVersion: future, mutations: [put(b(1), b(1))], primaryLock: b(1), lockTtl: 10n }),
      notIssued,
    );
    await expectInvalidArgument(
      srv.client.kvPrewrite({ startVersion: tsIn(11 * 60_000), mutations: [put(b(1), b(1))], primaryLock: b(1) }),
      notIssued,
    );
    await expectInvalidArgument(
      srv.client.kvCommit({ startVersion: now, commitVersion: future, keys: [b(1)] }),
      /commit_version .* is not a timestamp/,
    );
    await expectInvalidArgument(srv.client.kvBatchRollback({ startVersion: future, keys: [b(1)] }), notIssued);
    await expectInvalidArgument(
      srv.client.kvCheckTxnStatus({ primaryKey: b(1), lockTs: future, currentTs: now }),
      /lock_ts .* is not a timestamp/,
    );
    await expectInvalidArgument(
      srv.client.kvCheckTxnStatus({ primaryKey: b(1), lockTs: now, currentTs: future }),
      /current_ts .* is not a timestamp/,
    );
    await expectInvalidArgument(srv.client.kvResolveLock({ startVersion: future }), notIssued);
    await expectInvalidArgument(
      srv.client.kvResolveLock({ startVersion: now, commitVersion: future }),
      /commit_version .* is not a timestamp/,
    );
    expect(await cfLens(srv.storage), "nothing was written, not even a rollback record").toEqual([0, 0, 0]);

    // Reads write nothing: TinyKV's "read the latest" timestamp TsMax stays allowed.
    expect((await srv.client.kvGet({ key: b(1), version: TsMax })).notFound).toBe(true);
    // A timestamp shortly ahead of this store's clock (skew) is fine.
    expect(
      (await srv.client.kvPrewrite({ startVersion: tsIn(5000), mutations: [put(b(1), b(1))], primaryLock: b(1) }))
        .errors,
    ).toEqual([]);
  });

  it("a primary_lock over the key size limit is refused", async () => {
    const huge = Buffer.alloc(MAX_KEY_BYTES + 1, 7);
    await expectInvalidArgument(
      srv.client.kvPrewrite({ startVersion: tsIn(0), mutations: [put(b(1), b(1))], primaryLock: huge }),
      new RegExp(`primary_lock is ${MAX_KEY_BYTES + 1} bytes; the limit is ${MAX_KEY_BYTES}`),
    );
    expect(await cfLens(srv.storage)).toEqual([0, 0, 0]);
  });
});

/** Storage that records the size of every write batch. */
function countingStorage(inner: Storage): { storage: Storage; batches: number[] } {
  const batches: number[] = [];
  const storage: Storage = {
    start: () => inner.start(),
    stop: () => inner.stop(),
    reader: (ctx) => inner.reader(ctx),
    write: (ctx, batch: Modify[]) => {
      batches.push(batch.length);
      return inner.write(ctx, batch);
    },
  };
  return { storage, batches };
}

describe("KvResolveLock of a large txn", () => {
  it("resolves every lock in batches of a bounded number of keys", async () => {
    const startTs = tsIn(-1000);
    const n = 3 * RESOLVE_LOCK_BATCH_KEYS + 5;
    const keys = Array.from({ length: n }, (_, i) => Buffer.from(`key-${String(i).padStart(5, "0")}`));
    await seed.put(keys.flatMap((k) => seed.prewritten(k, keys[0]!, b(1), startTs, 10n)));
    const { storage, batches } = countingStorage(srv.storage);
    const res = await new TxnHandlers(storage).kvResolveLock({ startVersion: startTs, commitVersion: startTs + 1n });
    expect(res.error).toBeUndefined();
    expect(await cfLens(srv.storage), "every key committed, no lock left").toEqual([n, 0, n]);
    expect(batches.length).toBe(4);
    expect(Math.max(...batches), "a commit is 2 changes per key").toBeLessThanOrEqual(2 * RESOLVE_LOCK_BATCH_KEYS);
  });
});
