/**
 * Lab 4C: KvScan, KvCheckTxnStatus, KvBatchRollback, KvResolveLock over real gRPC against
 * StandaloneStorage, named after the course's commands4c_test.go.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CF_DEFAULT, CF_LOCK, CF_WRITE } from "../../src/kv/engine/index.js";
import { Action, LockInfo } from "../../src/proto/kvrpcpb.js";
import { encodeKey, Lock, TsMax, Write, WriteKind } from "../../src/txn/index.js";
import type { TxnServer } from "./txn-server.js";
import { b, cfLens, clearAll, dumpCf, expectInvalidArgument, getCf, Seeder, startTxnServer } from "./txn-server.js";

let srv: TxnServer;
let seed: Seeder;

beforeAll(async () => {
  srv = await startTxnServer();
  seed = new Seeder(srv.storage);
});
beforeEach(() => clearAll(srv.storage));
afterAll(() => srv.stop());

const rollbackRecord = (startTs: bigint) => new Write(startTs, WriteKind.Rollback).toBytes();
const snapshotAll = async () =>
  Promise.all(([CF_DEFAULT, CF_LOCK, CF_WRITE] as const).map((cf) => dumpCf(srv.storage, cf)));

describe("lab4c KvBatchRollback", () => {
  const rollback = (startVersion: bigint, ...keys: Buffer[]) => srv.client.kvBatchRollback({ startVersion, keys });

  it("TestEmptyRollback4C: no keys succeeds and writes nothing", async () => {
    expect((await rollback(100n)).error).toBeUndefined();
    expect(await cfLens(srv.storage)).toEqual([0, 0, 0]);
  });

  it("TestRollback4C: removes the lock and value, writes a rollback record at start ts", async () => {
    await seed.put(seed.prewritten(b(3), b(3), b(42), 100n));
    expect((await rollback(100n, b(3))).error).toBeUndefined();
    expect(await cfLens(srv.storage)).toEqual([0, 0, 1]);
    expect(await getCf(srv.storage, CF_WRITE, encodeKey(b(3), 100n))).toEqual(rollbackRecord(100n));
    expect(rollbackRecord(100n)).toEqual(b(3, 0, 0, 0, 0, 0, 0, 0, 100));
  });

  it("TestRollbackDuplicateKeys4C: keys repeated in one request are rolled back once", async () => {
    await seed.put([...seed.prewritten(b(3), b(3), b(42), 100n), ...seed.prewritten(b(15), b(3), b(0), 100n)]);
    expect((await rollback(100n, b(3), b(15), b(3), b(3), b(15))).error).toBeUndefined();
    expect(await cfLens(srv.storage)).toEqual([0, 0, 2]);
    expect(await getCf(srv.storage, CF_WRITE, encodeKey(b(15), 100n))).toEqual(rollbackRecord(100n));
  });

  it("TestRollbackMissingPrewrite4C: no lock still writes a rollback record", async () => {
    await seed.put(seed.committed(b(5), b(1), 80n, 90n));
    expect((await rollback(100n, b(3))).error).toBeUndefined();
    expect(await cfLens(srv.storage)).toEqual([1, 0, 2]);
    expect(await getCf(srv.storage, CF_WRITE, encodeKey(b(3), 100n))).toEqual(rollbackRecord(100n));
  });

  it("TestRollbackCommitted4C: a committed key is refused with abort, nothing changes", async () => {
    await seed.put([...seed.committed(b(3), b(42), 100n, 110n), ...seed.prewritten(b(4), b(3), b(43), 100n)]);
    const before = await snapshotAll();
    const res = await rollback(100n, b(4), b(3));
    expect(res.error?.abort).toMatch(/already committed at 110/);
    expect(await snapshotAll()).toEqual(before);
  });

  it("TestRollbackDuplicate4C: rolling back twice succeeds and changes nothing the second time", async () => {
    await seed.put([seed.write(b(3), 100n, 100n, WriteKind.Rollback)]);
    const before = await snapshotAll();
    expect((await rollback(100n, b(3))).error).toBeUndefined();
    expect(await snapshotAll()).toEqual(before);
  });

  it("TestRollbackOtherTxn4C: another txn's lock is left alone; the rollback record is written", async () => {
    await seed.put(seed.prewritten(b(3), b(3), b(42), 80n));
    expect((await rollback(100n, b(3))).error).toBeUndefined();
    expect(await cfLens(srv.storage)).toEqual([1, 1, 1]);
    expect(Lock.parse((await getCf(srv.storage, CF_LOCK, b(3)))!).ts).toBe(80n);
    expect(await getCf(srv.storage, CF_DEFAULT, encodeKey(b(3), 80n))).toEqual(b(42));
    expect(await getCf(srv.storage, CF_WRITE, encodeKey(b(3), 100n))).toEqual(rollbackRecord(100n));
  });

  it("a prewrite arriving after its txn was rolled back meets a write conflict", async () => {
    expect((await rollback(100n, b(3))).error).toBeUndefined();
    const res = await srv.client.kvPrewrite({
      startVersion: 100n,
      primaryLock: b(3),
      mutations: [{ op: 0, key: b(3), value: b(1) }],
    });
    expect(res.errors[0]?.conflict?.conflictTs).toBe(100n);
    expect(await cfLens(srv.storage)).toEqual([0, 0, 1]);
  });

  it("bad input is INVALID_ARGUMENT", async () => {
    await expectInvalidArgument(rollback(0n, b(3)), /start_version/);
    await expectInvalidArgument(rollback(100n, b(3), b()), /keys\[1\] must not be empty/);
    expect(await cfLens(srv.storage)).toEqual([0, 0, 0]);
  });
});

describe("lab4c KvCheckTxnStatus", () => {
  // physical(lockTs) = 5 * 2^22 ms, physical(currentTs) = 6 * 2^22 ms: about 4.2e6 ms later.
  const lockTs = 0x0000_0500_0000_0012n;
  const currentTs = 0x0000_0600_0000_0034n;
  const check = (primaryKey: Buffer, lockTs_: bigint, currentTs_: bigint) =>
    srv.client.kvCheckTxnStatus({ primaryKey, lockTs: lockTs_, currentTs: currentTs_ });

  it("TestCheckTxnStatusTtlExpired4C: an expired primary lock is rolled back (TTLExpireRollback)", async () => {
    await seed.put([seed.value(b(3), lockTs, b(42)), seed.lock(b(3), b(3), lockTs, 8n)]);
    const res = await check(b(3), lockTs, currentTs);
    expect(res.regionError).toBeUndefined();
    expect(res.action).toBe(Action.TTLExpireRollback);
    expect(res.lockTtl).toBe(0n);
    expect(res.commitVersion).toBe(0n);
    expect(await cfLens(srv.storage)).toEqual([0, 0, 1]);
    expect(await getCf(srv.storage, CF_WRITE, encodeKey(b(3), lockTs))).toEqual(rollbackRecord(lockTs));
  });

  it("TestCheckTxnStatusTtlNotExpired4C: a live lock answers its TTL and nothing changes", async () => {
    const ttl = (1n << 32n) + 8n;
    await seed.put([seed.value(b(3), lockTs, b(42)), seed.lock(b(3), b(3), lockTs, ttl)]);
    const before = await snapshotAll();
    const res = await check(b(3), lockTs, currentTs);
    expect(res.action).toBe(Action.NoAction);
    expect(res.lockTtl).toBe(ttl);
    expect(res.commitVersion).toBe(0n);
    expect(await snapshotAll()).toEqual(before);
  });

  it("TestCheckTxnStatusRolledBack4C: an existing rollback record answers rolled back", async () => {
    await seed.put([
      seed.write(b(3), lockTs, lockTs, WriteKind.Rollback),
      ...seed.committed(b(3), b(1), lockTs - 10n, lockTs - 5n),
    ]);
    const before = await snapshotAll();
    const res = await check(b(3), lockTs, currentTs);
    expect(res.action).toBe(Action.NoAction);
    expect(res.commitVersion).toBe(0n);
    expect(res.lockTtl).toBe(0n);
    expect(await snapshotAll()).toEqual(before);
  });

  it("TestCheckTxnStatusCommitted4C: a committed txn answers its commit version", async () => {
    await seed.put(seed.committed(b(3), b(42), lockTs, lockTs + 5n));
    const before = await snapshotAll();
    const res = await check(b(3), lockTs, currentTs);
    expect(res.action).toBe(Action.NoAction);
    expect(res.commitVersion).toBe(lockTs + 5n);
    expect(res.lockTtl).toBe(0n);
    expect(await snapshotAll()).toEqual(before);
  });

  it("TestCheckTxnStatusNoLockNoWrite4C: nothing found: a rollback record is written (LockNotExistRollback)", async () => {
    const res = await check(b(3), lockTs, currentTs);
    expect(res.action).toBe(Action.LockNotExistRollback);
    expect(res.commitVersion).toBe(0n);
    expect(await cfLens(srv.storage)).toEqual([0, 0, 1]);
    expect(await getCf(srv.storage, CF_WRITE, encodeKey(b(3), lockTs))).toEqual(rollbackRecord(lockTs));
  });

  it("another txn's lock on the primary is left alone; this txn is rolled back", async () => {
    await seed.put(seed.prewritten(b(3), b(3), b(42), lockTs + 1n, 1n << 40n));
    const res = await check(b(3), lockTs, currentTs);
    expect(res.action).toBe(Action.LockNotExistRollback);
    expect(Lock.parse((await getCf(srv.storage, CF_LOCK, b(3)))!).ts).toBe(lockTs + 1n);
  });

  it("bad input is INVALID_ARGUMENT", async () => {
    await expectInvalidArgument(check(b(), lockTs, currentTs), /primary_key must not be empty/);
    await expectInvalidArgument(check(b(3), 0n, currentTs), /lock_ts/);
    await expectInvalidArgument(check(b(3), lockTs, 0n), /current_ts/);
    expect(await cfLens(srv.storage)).toEqual([0, 0, 0]);
  });
});

describe("lab4c KvResolveLock", () => {
  const resolve = (startVersion: bigint, commitVersion: bigint) =>
    srv.client.kvResolveLock({ startVersion, commitVersion });
  /** Txn 100 locked keys 3, 4, 5 (primary 3); txn 101 locked key 6; key 7 committed long ago. */
  const seedLocks = () =>
    seed.put([
      ...seed.prewritten(b(3), b(3), b(42), 100n),
      ...seed.prewritten(b(4), b(3), b(43), 100n),
      seed.lock(b(5), b(3), 100n, 0n, WriteKind.Delete),
      ...seed.prewritten(b(6), b(6), b(44), 101n),
      ...seed.committed(b(7), b(45), 80n, 90n),
    ]);

  it("TestEmptyResolve4C: no locks of the txn: success, nothing written", async () => {
    await seed.put(seed.prewritten(b(6), b(6), b(44), 101n));
    const before = await snapshotAll();
    expect((await resolve(100n, 0n)).error).toBeUndefined();
    expect((await resolve(100n, 120n)).error).toBeUndefined();
    expect(await snapshotAll()).toEqual(before);
  });

  it("TestResolveCommit4C: commits every lock of the txn; others untouched", async () => {
    await seedLocks();
    expect((await resolve(100n, 120n)).error).toBeUndefined();
    expect(await cfLens(srv.storage)).toEqual([4, 1, 4]);
    for (const k of [3, 4])
      expect(await getCf(srv.storage, CF_WRITE, encodeKey(b(k), 120n))).toEqual(
        new Write(100n, WriteKind.Put).toBytes(),
      );
    expect(await getCf(srv.storage, CF_WRITE, encodeKey(b(5), 120n))).toEqual(
      new Write(100n, WriteKind.Delete).toBytes(),
    );
    expect(Lock.parse((await getCf(srv.storage, CF_LOCK, b(6)))!).ts).toBe(101n);
    expect((await srv.client.kvGet({ key: b(4), version: 130n })).value).toEqual(b(43));
  });

  it("TestResolveRollback4C: rolls back every lock of the txn; others untouched", async () => {
    await seedLocks();
    expect((await resolve(100n, 0n)).error).toBeUndefined();
    expect(await cfLens(srv.storage)).toEqual([2, 1, 4]);
    for (const k of [3, 4, 5])
      expect(await getCf(srv.storage, CF_WRITE, encodeKey(b(k), 100n))).toEqual(rollbackRecord(100n));
    expect(Lock.parse((await getCf(srv.storage, CF_LOCK, b(6)))!).ts).toBe(101n);
  });

  it("TestResolveCommitWritten4C: keys already committed are left as they are", async () => {
    await seed.put([...seed.committed(b(3), b(42), 100n, 120n), ...seed.prewritten(b(4), b(3), b(43), 100n)]);
    expect((await resolve(100n, 120n)).error).toBeUndefined();
    expect(await cfLens(srv.storage)).toEqual([2, 0, 2]);
    expect(await dumpCf(srv.storage, CF_WRITE)).toHaveLength(2);
  });

  it("TestResolveRollbackWritten4C: keys already rolled back are left as they are", async () => {
    await seed.put([seed.write(b(3), 100n, 100n, WriteKind.Rollback), ...seed.prewritten(b(4), b(3), b(43), 100n)]);
    expect((await resolve(100n, 0n)).error).toBeUndefined();
    expect(await cfLens(srv.storage)).toEqual([0, 0, 2]);
    expect(await getCf(srv.storage, CF_WRITE, encodeKey(b(4), 100n))).toEqual(rollbackRecord(100n));
  });

  it("bad input is INVALID_ARGUMENT", async () => {
    await seedLocks();
    await expectInvalidArgument(resolve(0n, 0n), /start_version/);
    await expectInvalidArgument(resolve(100n, 100n), /commit_version/);
    expect(await cfLens(srv.storage)).toEqual([4, 4, 1]);
  });
});

describe("lab4c KvScan", () => {
  const scan = (startKey: Buffer, limit: number, version: bigint) => srv.client.kvScan({ startKey, limit, version });
  const pairs = async (startKey: Buffer, limit: number, version: bigint) =>
    (await scan(startKey, limit, version)).pairs.map((p) =>
      p.error ? { key: [...p.key], error: p.error } : { key: [...p.key], value: [...p.value] },
    );

  /** Keys 1..5 with versions; key 4 deleted at 110; key 5 only written at 120; key [2,0] rolled back. */
  const seedData = () =>
    seed.put([
      ...seed.committed(b(1), b(8), 90n, 95n),
      ...seed.committed(b(1), b(9), 100n, 105n),
      ...seed.committed(b(2), b(10), 90n, 95n),
      seed.write(b(2, 0), 99n, 99n, WriteKind.Rollback),
      ...seed.committed(b(3), b(11), 90n, 95n),
      ...seed.committed(b(4), b(12), 90n, 95n),
      seed.write(b(4), 110n, 108n, WriteKind.Delete),
      ...seed.committed(b(5), b(13), 115n, 120n),
    ]);

  it("TestScanEmpty4C: an empty store scans to nothing", async () => {
    const res = await scan(b(), 10, 100n);
    expect(res.regionError).toBeUndefined();
    expect(res.pairs).toEqual([]);
  });

  it("TestScanLimitZero4C: limit 0 answers no pairs", async () => {
    await seedData();
    expect((await scan(b(), 0, 200n)).pairs).toEqual([]);
  });

  it("TestScanAll4C: latest visible version of every key, in key order", async () => {
    await seedData();
    expect(await pairs(b(), 100, 200n)).toEqual([
      { key: [1], value: [9] },
      { key: [2], value: [10] },
      { key: [3], value: [11] },
      { key: [5], value: [13] },
    ]);
    expect(await pairs(b(), 100, 100n)).toEqual([
      { key: [1], value: [8] },
      { key: [2], value: [10] },
      { key: [3], value: [11] },
      { key: [4], value: [12] },
    ]);
  });

  it("TestScanLimit4C: stops after limit pairs; start_key is inclusive", async () => {
    await seedData();
    expect(await pairs(b(), 2, 200n)).toEqual([
      { key: [1], value: [9] },
      { key: [2], value: [10] },
    ]);
    expect(await pairs(b(2), 2, 200n)).toEqual([
      { key: [2], value: [10] },
      { key: [3], value: [11] },
    ]);
    expect(await pairs(b(2, 0), 1, 200n)).toEqual([{ key: [3], value: [11] }]);
  });

  it("TestScanDeleted4C: deleted keys are skipped, visible again before the delete", async () => {
    await seedData();
    expect((await pairs(b(4), 10, 200n)).map((p) => p.key)).toEqual([[5]]);
    expect(await pairs(b(4), 10, 109n)).toEqual([{ key: [4], value: [12] }]);
  });

  it("a blocking lock is reported in the key's pair, including a key with no committed version", async () => {
    await seedData();
    await seed.put([...seed.prewritten(b(2), b(2), b(99), 150n, 7n), ...seed.prewritten(b(2, 5), b(2), b(98), 150n)]);
    const got = await pairs(b(), 3, 200n);
    expect(got).toEqual([
      { key: [1], value: [9] },
      {
        key: [2],
        error: expect.objectContaining({
          locked: LockInfo.create({ key: b(2), primaryLock: b(2), lockVersion: 150n, lockTtl: 7n }),
        }),
      },
      { key: [2, 5], error: expect.objectContaining({ locked: expect.objectContaining({ lockVersion: 150n }) }) },
    ]);
    // a read older than the lock ignores it
    expect((await pairs(b(), 3, 140n)).map((p) => p.key)).toEqual([[1], [2], [3]]);
    // a TsMax read is only blocked by the lock on the primary
    expect((await pairs(b(2), 2, TsMax)).map((p) => ("error" in p ? "locked" : p.key))).toEqual(["locked", [3]]);
  });

  it("bad input is INVALID_ARGUMENT", async () => {
    await expectInvalidArgument(scan(b(), 10, 0n), /version/);
    await expectInvalidArgument(scan(b(), 1_000_000, 10n), /scan limit/);
  });
});
