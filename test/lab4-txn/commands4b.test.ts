/**
 * Lab 4B: KvGet, KvPrewrite, KvCommit over real gRPC against StandaloneStorage, named after the
 * course's commands4b_test.go. Data is seeded and inspected directly through the storage.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CF_DEFAULT, CF_LOCK, CF_WRITE } from "../../src/kv/engine/index.js";
import type { Mutation } from "../../src/proto/kvrpcpb.js";
import { LockInfo, Op } from "../../src/proto/kvrpcpb.js";
import { encodeKey, Lock, Write, WriteKind } from "../../src/txn/index.js";
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

const get = (key: Buffer, version: bigint) => srv.client.kvGet({ key, version });
const put = (key: Buffer, value: Buffer): Mutation => ({ op: Op.Put, key, value });
const del = (key: Buffer): Mutation => ({ op: Op.Del, key, value: Buffer.alloc(0) });
const prewrite = (startVersion: bigint, mutations: Mutation[], primaryLock = mutations[0]?.key ?? b(1), lockTtl = 0n) =>
  srv.client.kvPrewrite({ startVersion, mutations, primaryLock, lockTtl });
const commit = (startVersion: bigint, commitVersion: bigint, ...keys: Buffer[]) =>
  srv.client.kvCommit({ startVersion, commitVersion, keys });

describe("lab4b KvGet", () => {
  it("TestGetValue4B: a committed value is read", async () => {
    await seed.put(seed.committed(b(99), b(42), 50n, 54n));
    const res = await get(b(99), 100n);
    expect(res.regionError).toBeUndefined();
    expect(res.error).toBeUndefined();
    expect(res.notFound).toBe(false);
    expect(res.value).toEqual(b(42));
  });

  it("TestGetValueTs4B: reads at several ts see the version committed at or before them", async () => {
    await seed.put(seed.committed(b(99), b(42), 50n, 54n));
    expect((await get(b(99), 100n)).value).toEqual(b(42));
    expect((await get(b(99), 54n)).value).toEqual(b(42));
    expect((await get(b(99), 100n)).value).toEqual(b(42));
    const early = await get(b(99), 53n);
    expect(early.notFound).toBe(true);
    expect(early.value).toEqual(b());
  });

  it("TestGetEmpty4B: an empty store answers not_found", async () => {
    const res = await get(b(100), 100n);
    expect(res.error).toBeUndefined();
    expect(res.notFound).toBe(true);
  });

  it("TestGetNone4B: a missing key among others answers not_found", async () => {
    await seed.put([...seed.committed(b(99), b(42), 50n, 54n), ...seed.committed(b(101), b(42), 50n, 54n)]);
    const res = await get(b(100), 100n);
    expect(res.notFound).toBe(true);
  });

  it("TestGetVersions4B: each read sees the newest version committed at or before its ts", async () => {
    await seed.put([
      ...seed.committed(b(99), b(42), 50n, 54n),
      ...seed.committed(b(99), b(43), 60n, 66n),
      ...seed.committed(b(99), b(44), 120n, 122n),
    ]);
    const at = async (ts: bigint) => {
      const r = await get(b(99), ts);
      return r.notFound ? "none" : r.value[0];
    };
    expect(await at(40n)).toBe("none");
    expect(await at(54n)).toBe(42);
    expect(await at(60n)).toBe(42);
    expect(await at(66n)).toBe(43);
    expect(await at(121n)).toBe(43);
    expect(await at(122n)).toBe(44);
    expect(await at(1000n)).toBe(44);
  });

  it("TestGetDeleted4B: a committed delete makes the key not_found for later reads only", async () => {
    await seed.put([...seed.committed(b(99), b(42), 50n, 54n), seed.write(b(99), 66n, 60n, WriteKind.Delete)]);
    expect((await get(b(99), 55n)).value).toEqual(b(42));
    expect((await get(b(99), 66n)).notFound).toBe(true);
    expect((await get(b(99), 100n)).notFound).toBe(true);
  });

  it("TestGetLocked4B: an older lock blocks the read with its LockInfo; a newer one does not", async () => {
    await seed.put([...seed.committed(b(99), b(42), 50n, 54n), ...seed.prewritten(b(99), b(99), b(43), 200n, 3000n)]);
    const before = await get(b(99), 55n);
    expect(before.error).toBeUndefined();
    expect(before.value).toEqual(b(42));
    const after = await get(b(99), 300n);
    expect(after.value).toEqual(b());
    expect(after.error?.locked).toEqual(
      LockInfo.create({ key: b(99), primaryLock: b(99), lockVersion: 200n, lockTtl: 3000n }),
    );
    expect(after.error?.conflict).toBeUndefined();
  });

  it("bad input: an empty key or version 0 is INVALID_ARGUMENT", async () => {
    await expectInvalidArgument(get(b(), 100n), /key must not be empty/);
    await expectInvalidArgument(get(b(1), 0n), /version/);
  });
});

describe("lab4b KvPrewrite", () => {
  it("TestEmptyPrewrite4B: no mutations succeeds and writes nothing", async () => {
    const res = await prewrite(100n, [], b(1));
    expect(res.errors).toEqual([]);
    expect(await cfLens(srv.storage)).toEqual([0, 0, 0]);
  });

  it("TestSinglePrewrite4B: value at start ts and a lock with primary, kind, ts and ttl", async () => {
    const res = await prewrite(100n, [put(b(3), b(42))], b(1), 1000n);
    expect(res.errors).toEqual([]);
    expect(await cfLens(srv.storage)).toEqual([1, 1, 0]);
    expect(await getCf(srv.storage, CF_DEFAULT, encodeKey(b(3), 100n))).toEqual(b(42));
    const lock = await getCf(srv.storage, CF_LOCK, b(3));
    expect(lock).toEqual(new Lock(b(1), 100n, 1000n, WriteKind.Put).toBytes());
    expect(lock!.subarray(0, 2)).toEqual(b(1, 1)); // primary [1], kind Put
  });

  it("TestPrewriteLocked4B: a key locked by another txn is refused; the first lock is kept", async () => {
    expect((await prewrite(100n, [put(b(3), b(42))], b(1))).errors).toEqual([]);
    const res = await prewrite(101n, [put(b(3), b(53))], b(1));
    expect(res.errors).toHaveLength(1);
    expect(res.errors[0]!.locked).toEqual(
      LockInfo.create({ key: b(3), primaryLock: b(1), lockVersion: 100n, lockTtl: 0n }),
    );
    expect(await cfLens(srv.storage)).toEqual([1, 1, 0]);
    expect(Lock.parse((await getCf(srv.storage, CF_LOCK, b(3)))!).ts).toBe(100n);
    expect(await getCf(srv.storage, CF_DEFAULT, encodeKey(b(3), 100n))).toEqual(b(42));
  });

  it("TestPrewriteWritten4B: a write committed at or after start ts is a write conflict; nothing written", async () => {
    await seed.put(seed.committed(b(3), b(5), 80n, 101n));
    const res = await prewrite(100n, [put(b(3), b(42))], b(1));
    expect(res.errors).toHaveLength(1);
    expect(res.errors[0]!.conflict).toEqual({ startTs: 100n, conflictTs: 101n, key: b(3), primary: b(1) });
    expect(await cfLens(srv.storage)).toEqual([1, 0, 1]);
    // commit_ts == start_ts (another txn's rollback record at our start ts) conflicts too
    await seed.put([seed.write(b(4), 100n, 100n, WriteKind.Rollback)]);
    expect((await prewrite(100n, [put(b(4), b(1))])).errors[0]?.conflict?.conflictTs).toBe(100n);
  });

  it("TestPrewriteWrittenNoConflict4B: a write committed before start ts does not conflict", async () => {
    await seed.put(seed.committed(b(3), b(5), 80n, 90n));
    const res = await prewrite(100n, [put(b(3), b(42))], b(1));
    expect(res.errors).toEqual([]);
    expect(await cfLens(srv.storage)).toEqual([2, 1, 1]);
    expect(await getCf(srv.storage, CF_DEFAULT, encodeKey(b(3), 100n))).toEqual(b(42));
  });

  it("TestMultiplePrewrites4B: two txns on different keys both lock", async () => {
    expect((await prewrite(100n, [put(b(3), b(42))], b(1))).errors).toEqual([]);
    expect((await prewrite(101n, [put(b(4), b(53))], b(1))).errors).toEqual([]);
    expect(await cfLens(srv.storage)).toEqual([2, 2, 0]);
    expect(Lock.parse((await getCf(srv.storage, CF_LOCK, b(3)))!).ts).toBe(100n);
    expect(Lock.parse((await getCf(srv.storage, CF_LOCK, b(4)))!).ts).toBe(101n);
  });

  it("TestPrewriteOverwrite4B: the same key twice in one prewrite: the last value wins", async () => {
    const res = await prewrite(100n, [put(b(3), b(42)), put(b(3), b(45))], b(1));
    expect(res.errors).toEqual([]);
    expect(await cfLens(srv.storage)).toEqual([1, 1, 0]);
    expect(await getCf(srv.storage, CF_DEFAULT, encodeKey(b(3), 100n))).toEqual(b(45));
  });

  it("TestPrewriteMultiple4B: several keys incl. Del and a repeat: one lock per key, values for Puts", async () => {
    const res = await prewrite(
      100n,
      [put(b(3), b(43)), put(b(4), b(44)), put(b(5), b(45)), put(b(4), b(1, 3, 5)), put(b(255), b(45)), del(b(6))],
      b(3),
    );
    expect(res.errors).toEqual([]);
    expect(await cfLens(srv.storage)).toEqual([4, 5, 0]);
    expect(await getCf(srv.storage, CF_DEFAULT, encodeKey(b(4), 100n))).toEqual(b(1, 3, 5));
    expect(Lock.parse((await getCf(srv.storage, CF_LOCK, b(6)))!).kind).toBe(WriteKind.Delete);
    for (const k of [3, 4, 5, 255])
      expect(Lock.parse((await getCf(srv.storage, CF_LOCK, b(k)))!)).toEqual(new Lock(b(3), 100n, 0n, WriteKind.Put));
  });

  it("a Put then a Del of one key in one prewrite leaves a Delete lock and no value", async () => {
    expect((await prewrite(100n, [put(b(3), b(42)), del(b(3))])).errors).toEqual([]);
    expect(await cfLens(srv.storage)).toEqual([0, 1, 0]);
    expect(Lock.parse((await getCf(srv.storage, CF_LOCK, b(3)))!).kind).toBe(WriteKind.Delete);
  });

  it("a retried prewrite of the same txn is idempotent", async () => {
    const muts = [put(b(3), b(42)), put(b(4), b(43))];
    expect((await prewrite(100n, muts, b(3), 500n)).errors).toEqual([]);
    const first = await Promise.all(([CF_DEFAULT, CF_LOCK] as const).map((cf) => dumpCf(srv.storage, cf)));
    expect((await prewrite(100n, muts, b(3), 500n)).errors).toEqual([]);
    expect(await Promise.all(([CF_DEFAULT, CF_LOCK] as const).map((cf) => dumpCf(srv.storage, cf)))).toEqual(first);
  });

  it("a prewrite with one refused key writes none of its keys", async () => {
    await seed.put(seed.prewritten(b(5), b(5), b(1), 90n));
    const res = await prewrite(100n, [put(b(3), b(42)), put(b(5), b(43)), put(b(7), b(44))]);
    expect(res.errors).toHaveLength(1);
    expect(res.errors[0]!.locked?.key).toEqual(b(5));
    expect(await cfLens(srv.storage)).toEqual([1, 1, 0]);
  });

  it("bad input is INVALID_ARGUMENT and writes nothing", async () => {
    await expectInvalidArgument(
      prewrite(100n, [put(b(3), b(1)), put(b(), b(2))], b(3)),
      /mutations\[1\]\.key must not be empty/,
    );
    await expectInvalidArgument(prewrite(0n, [put(b(3), b(1))]), /start_version/);
    await expectInvalidArgument(prewrite(100n, [put(b(3), b(1))], b()), /primary_lock/);
    await expectInvalidArgument(prewrite(100n, [{ op: Op.Lock, key: b(3), value: b() }]), /not supported/);
    expect(await cfLens(srv.storage)).toEqual([0, 0, 0]);
  });
});

describe("lab4b KvCommit", () => {
  it("TestEmptyCommit4B: no keys succeeds and writes nothing", async () => {
    const res = await commit(100n, 110n);
    expect(res.error).toBeUndefined();
    expect(await cfLens(srv.storage)).toEqual([0, 0, 0]);
  });

  it("TestSingleCommit4B: a write record at commit ts, lock removed, value kept", async () => {
    await seed.put(seed.prewritten(b(3), b(3), b(42), 100n));
    const res = await commit(100n, 110n, b(3));
    expect(res.error).toBeUndefined();
    expect(await cfLens(srv.storage)).toEqual([1, 0, 1]);
    expect(await getCf(srv.storage, CF_WRITE, encodeKey(b(3), 110n))).toEqual(new Write(100n, WriteKind.Put).toBytes());
    expect(await getCf(srv.storage, CF_DEFAULT, encodeKey(b(3), 100n))).toEqual(b(42));
    expect((await get(b(3), 120n)).value).toEqual(b(42));
  });

  it("TestCommitOverwrite4B: commit atop an older committed version; reads see each in turn", async () => {
    await seed.put([...seed.committed(b(3), b(15), 80n, 90n), ...seed.prewritten(b(3), b(3), b(42), 100n)]);
    expect((await commit(100n, 110n, b(3))).error).toBeUndefined();
    expect(await cfLens(srv.storage)).toEqual([2, 0, 2]);
    expect((await get(b(3), 105n)).value).toEqual(b(15));
    expect((await get(b(3), 110n)).value).toEqual(b(42));
  });

  it("TestCommitMultipleKeys4B: commits the listed keys and leaves other txns untouched", async () => {
    await seed.put([
      ...seed.prewritten(b(3), b(3), b(42), 100n),
      ...seed.prewritten(b(4), b(3), b(43), 100n),
      ...seed.prewritten(b(5), b(3), b(44), 100n),
      ...seed.prewritten(b(6), b(6), b(45), 101n),
      ...seed.committed(b(7), b(46), 80n, 90n),
    ]);
    expect((await commit(100n, 110n, b(3), b(4), b(5))).error).toBeUndefined();
    expect(await cfLens(srv.storage)).toEqual([5, 1, 4]);
    for (const k of [3, 4, 5])
      expect(await getCf(srv.storage, CF_WRITE, encodeKey(b(k), 110n))).toEqual(
        new Write(100n, WriteKind.Put).toBytes(),
      );
    expect(Lock.parse((await getCf(srv.storage, CF_LOCK, b(6)))!).ts).toBe(101n);
  });

  it("TestRecommitKey4B: a key listed twice in one commit is committed once", async () => {
    await seed.put(seed.prewritten(b(3), b(3), b(42), 100n));
    expect((await commit(100n, 110n, b(3), b(3))).error).toBeUndefined();
    expect(await cfLens(srv.storage)).toEqual([1, 0, 1]);
  });

  it("TestCommitConflictRollback4B: a rolled-back txn cannot commit (abort)", async () => {
    await seed.put([seed.write(b(3), 100n, 100n, WriteKind.Rollback)]);
    const res = await commit(100n, 110n, b(3));
    expect(res.error?.abort).toMatch(/rolled back/);
    expect(await cfLens(srv.storage)).toEqual([0, 0, 1]);
  });

  it("TestCommitConflictRace4B: a key locked by another txn answers retryable", async () => {
    await seed.put(seed.prewritten(b(3), b(3), b(42), 101n));
    const res = await commit(100n, 110n, b(3));
    expect(res.error?.retryable).not.toBe("");
    expect(res.error?.retryable).toMatch(/locked by txn 101/);
    expect(await cfLens(srv.storage)).toEqual([1, 1, 0]);
  });

  it("TestCommitConflictRepeat4B: re-committing a committed txn succeeds and changes nothing", async () => {
    await seed.put(seed.committed(b(3), b(42), 100n, 110n));
    const before = await dumpCf(srv.storage, CF_WRITE);
    expect((await commit(100n, 110n, b(3))).error).toBeUndefined();
    expect(await dumpCf(srv.storage, CF_WRITE)).toEqual(before);
    expect(await cfLens(srv.storage)).toEqual([1, 0, 1]);
  });

  it("TestCommitMissingPrewrite4B: no lock and no write: success, nothing written", async () => {
    await seed.put(seed.committed(b(4), b(42), 80n, 90n));
    expect((await commit(100n, 110n, b(3))).error).toBeUndefined();
    expect(await cfLens(srv.storage)).toEqual([1, 0, 1]);
  });

  it("a commit with one refused key commits none of its keys", async () => {
    await seed.put([...seed.prewritten(b(3), b(3), b(42), 100n), ...seed.prewritten(b(4), b(4), b(42), 101n)]);
    expect((await commit(100n, 110n, b(3), b(4))).error?.retryable).toMatch(/locked/);
    expect(await cfLens(srv.storage)).toEqual([2, 2, 0]);
  });

  it("bad input is INVALID_ARGUMENT and writes nothing", async () => {
    await seed.put(seed.prewritten(b(3), b(3), b(42), 100n));
    await expectInvalidArgument(commit(100n, 100n, b(3)), /commit_version 100 must be greater than start_version 100/);
    await expectInvalidArgument(commit(100n, 90n, b(3)), /commit_version/);
    await expectInvalidArgument(commit(100n, 110n, b(3), b()), /keys\[1\] must not be empty/);
    await expectInvalidArgument(commit(0n, 110n, b(3)), /start_version/);
    expect(await cfLens(srv.storage)).toEqual([1, 1, 0]);
  });
});
