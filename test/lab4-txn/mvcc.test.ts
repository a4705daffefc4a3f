/** Lab 4A: MVCC key encoding, Lock/Write records and MvccTxn, named after the course's transaction_test.go. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CF_DEFAULT, CF_LOCK, CF_WRITE } from "../../src/kv/engine/index.js";
import { StandaloneStorage } from "../../src/kv/storage/index.js";
import {
  decodeTimestamp,
  decodeUserKey,
  encodeBytes,
  encodeKey,
  Lock,
  MvccTxn,
  physicalTime,
  RecordDecodeError,
  TsMax,
  Write,
  WriteKind,
} from "../../src/txn/index.js";
import { tempDir } from "../harness/wait.js";
import { b, clearAll, Seeder } from "./txn-server.js";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");

describe("lab4a key encoding", () => {
  it("TestEncodeKey: exact byte vectors and ordering (key asc, then ts desc)", () => {
    expect(encodeKey(b(), 0n)).toEqual(hex("0000000000000000 f7 ffffffffffffffff"));
    expect(encodeKey(b(42), 0n)).toEqual(hex("2a00000000000000 f8 ffffffffffffffff"));
    expect(encodeBytes(b(1, 2, 3))).toEqual(hex("0102030000000000 fa"));
    expect(encodeBytes(b(1, 2, 3, 4, 5, 6, 7, 8))).toEqual(hex("0102030405060708 ff 0000000000000000 f7"));
    expect(encodeKey(b(42), 1n)).toEqual(hex("2a00000000000000 f8 fffffffffffffffe"));
    expect(encodeKey(b(42), TsMax).subarray(9)).toEqual(hex("0000000000000000"));

    const ordered = [
      encodeKey(b(), 10n),
      encodeKey(b(), 1n),
      encodeKey(b(0), 5n),
      encodeKey(b(1), 100n),
      encodeKey(b(1), 99n),
      encodeKey(b(1, 0), 1000n),
      encodeKey(b(1, 2, 3, 4, 5, 6, 7, 8), 3n),
      encodeKey(b(1, 2, 3, 4, 5, 6, 7, 8, 0), 3n),
      encodeKey(b(2), 1n),
    ];
    const sorted = [...ordered].sort(Buffer.compare);
    expect(sorted).toEqual(ordered);
  });

  it("TestDecodeKey: user key and timestamp round trip, bad input is a clear error", () => {
    for (const key of [
      b(),
      b(42),
      b(1, 2, 3, 4, 5, 6, 7),
      b(1, 2, 3, 4, 5, 6, 7, 8),
      Buffer.alloc(100, 7),
      b(0, 0, 0),
    ]) {
      for (const ts of [0n, 1n, 453n, TsMax - 1n, TsMax]) {
        const enc = encodeKey(key, ts);
        expect(decodeUserKey(enc)).toEqual(key);
        expect(decodeTimestamp(enc)).toBe(ts);
      }
    }
    expect(() => decodeUserKey(b(1, 2, 3))).toThrow(/truncated/);
    expect(() => decodeUserKey(hex("2a00000000000001 f8 ffffffffffffffff"))).toThrow(/padding/);
    expect(() => decodeUserKey(hex("2a00000000000000 f8 ff"))).toThrow(/timestamp/);
  });

  it("physicalTime is the ms part of a TSO timestamp", () => {
    expect(physicalTime((1234n << 18n) | 77n)).toBe(1234n);
  });
});

describe("lab4a Lock and Write records", () => {
  it("lock bytes are primary | kind | start_ts | ttl and parse back", () => {
    const lock = new Lock(b(1), 100n, 0n, WriteKind.Put);
    expect(lock.toBytes()).toEqual(hex("01 01 0000000000000064 0000000000000000"));
    const parsed = Lock.parse(new Lock(b(16, 17), 453n, 100000n, WriteKind.Delete).toBytes());
    expect(parsed).toEqual(new Lock(b(16, 17), 453n, 100000n, WriteKind.Delete));
    expect(Lock.parse(new Lock(b(), 1n, 2n, WriteKind.Rollback).toBytes()).primary).toEqual(b());
  });

  it("write bytes are kind | start_ts and parse back", () => {
    expect(new Write(0x1234n, WriteKind.Rollback).toBytes()).toEqual(hex("03 0000000000001234"));
    expect(Write.parse(new Write(99n, WriteKind.Delete).toBytes())).toEqual(new Write(99n, WriteKind.Delete));
  });

  it("malformed records are refused with a typed error", () => {
    expect(() => Lock.parse(b(1, 2, 3))).toThrow(RecordDecodeError);
    expect(() => Write.parse(hex("09 0000000000000001"))).toThrow(/unknown kind 9/);
    expect(() => Write.parse(b(1))).toThrow(RecordDecodeError);
  });

  it("a lock blocks reads at or after its ts; a TsMax read only by a lock on its primary", () => {
    const lock = new Lock(b(1), 200n, 10n, WriteKind.Put);
    expect(lock.blocksRead(b(2), 199n)).toBe(false);
    expect(lock.blocksRead(b(2), 200n)).toBe(true);
    expect(lock.blocksRead(b(2), TsMax)).toBe(false);
    expect(lock.blocksRead(b(1), TsMax)).toBe(true);
  });
});

describe("lab4a MvccTxn", () => {
  let dir: ReturnType<typeof tempDir>;
  let storage: StandaloneStorage;
  let seed: Seeder;
  const open: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    dir = tempDir("tinykv-lab4a-");
    storage = new StandaloneStorage(dir.path);
    await storage.start();
    seed = new Seeder(storage);
  });
  beforeEach(async () => {
    while (open.length > 0) await open.pop()!();
    await clearAll(storage);
  });
  afterAll(async () => {
    while (open.length > 0) await open.pop()!();
    await storage.stop();
    dir.cleanup();
  });

  async function txnAt(ts: bigint): Promise<MvccTxn> {
    const reader = await storage.reader(undefined);
    const txn = new MvccTxn(reader, ts);
    open.push(async () => {
      await txn.close();
      await reader.close();
    });
    return txn;
  }

  it("TestPutLock4A: one put in CF lock at the raw key", async () => {
    const txn = await txnAt(453n);
    const lock = new Lock(b(16), 100n, 100000n, WriteKind.Rollback);
    txn.putLock(b(1), lock);
    expect(txn.writes).toEqual([{ kind: "put", cf: CF_LOCK, key: b(1), value: lock.toBytes() }]);
  });

  it("TestPutWrite4A: one put in CF write at EncodeKey(key, commit ts)", async () => {
    const txn = await txnAt(453n);
    txn.putWrite(b(16, 240), 0n, new Write(454n, WriteKind.Delete));
    expect(txn.writes).toEqual([
      { kind: "put", cf: CF_WRITE, key: encodeKey(b(16, 240), 0n), value: hex("02 00000000000001c6") },
    ]);
  });

  it("TestPutValue4A: one put in CF default at EncodeKey(key, start ts)", async () => {
    const txn = await txnAt(453n);
    txn.putValue(b(32), b(4, 4, 4, 4));
    expect(txn.writes).toEqual([{ kind: "put", cf: CF_DEFAULT, key: encodeKey(b(32), 453n), value: b(4, 4, 4, 4) }]);
  });

  it("TestGetLock4A: parses a stored lock; a missing lock is undefined", async () => {
    const lock = new Lock(b(16), 100n, 100000n, WriteKind.Rollback);
    await seed.put([{ cf: CF_LOCK, key: b(1), value: lock.toBytes() }]);
    const txn = await txnAt(453n);
    expect(await txn.getLock(b(1))).toEqual(lock);
    expect(await txn.getLock(b(2))).toBeUndefined();
  });

  it("TestDeleteLock4A: one delete in CF lock at the raw key", async () => {
    const txn = await txnAt(453n);
    txn.deleteLock(b(1));
    expect(txn.writes).toEqual([{ kind: "delete", cf: CF_LOCK, key: b(1) }]);
  });

  it("TestDeleteValue4A: one delete in CF default at EncodeKey(key, start ts)", async () => {
    const txn = await txnAt(63454n);
    txn.deleteValue(b(17, 255, 0));
    expect(txn.writes).toEqual([{ kind: "delete", cf: CF_DEFAULT, key: encodeKey(b(17, 255, 0), 63454n) }]);
  });

  /** key [16] written at start 50 / commit 54 (value 42), and at start 60 / commit 66 (value 43). */
  const twoVersions = () => [...seed.committed(b(16), b(42), 50n, 54n), ...seed.committed(b(16), b(43), 60n, 66n)];

  it("TestGetValueSimple4A: the version committed before the txn's start is read", async () => {
    await seed.put(seed.committed(b(16), b(42), 50n, 54n));
    expect(await (await txnAt(100n)).getValue(b(16))).toEqual(b(42));
    expect(await (await txnAt(54n)).getValue(b(16))).toEqual(b(42));
  });

  it("TestGetValueMissing4A: another key's versions are not read", async () => {
    await seed.put([...seed.committed(b(16), b(42), 50n, 54n), ...seed.committed(b(16, 0), b(44), 50n, 54n)]);
    const txn = await txnAt(100n);
    expect(await txn.getValue(b(15))).toBeUndefined();
    expect(await txn.getValue(b(16, 0, 0))).toBeUndefined();
    expect(await txn.getValue(b(17))).toBeUndefined();
  });

  it("TestGetValueTooEarly4A: a version committed after the txn's start is invisible", async () => {
    await seed.put(seed.committed(b(16), b(42), 50n, 54n));
    expect(await (await txnAt(53n)).getValue(b(16))).toBeUndefined();
    expect(await (await txnAt(40n)).getValue(b(16))).toBeUndefined();
  });

  it("TestGetValueOverwritten4A: the newest visible version wins", async () => {
    await seed.put(twoVersions());
    expect(await (await txnAt(100n)).getValue(b(16))).toEqual(b(43));
  });

  it("TestGetValueNotOverwritten4A: a version committed after start does not hide the older one", async () => {
    await seed.put(twoVersions());
    expect(await (await txnAt(60n)).getValue(b(16))).toEqual(b(42));
    expect(await (await txnAt(65n)).getValue(b(16))).toEqual(b(42));
  });

  it("TestGetValueDeleted4A: a delete record hides older values", async () => {
    await seed.put([...seed.committed(b(16), b(42), 50n, 54n), seed.write(b(16), 66n, 60n, WriteKind.Delete)]);
    expect(await (await txnAt(100n)).getValue(b(16))).toBeUndefined();
  });

  it("TestGetValueNotDeleted4A: a delete committed after start does not hide the older value", async () => {
    await seed.put([...seed.committed(b(16), b(42), 50n, 54n), seed.write(b(16), 66n, 60n, WriteKind.Delete)]);
    expect(await (await txnAt(65n)).getValue(b(16))).toEqual(b(42));
  });

  it("getValue skips rollback records to the version below them", async () => {
    await seed.put([...seed.committed(b(16), b(42), 50n, 54n), seed.write(b(16), 60n, 60n, WriteKind.Rollback)]);
    expect(await (await txnAt(100n)).getValue(b(16))).toEqual(b(42));
  });

  it("TestCurrentWrite4A: finds the write whose start ts is the txn's, with its commit ts", async () => {
    await seed.put([...twoVersions(), seed.write(b(16), 70n, 70n, WriteKind.Rollback)]);
    expect(await (await txnAt(50n)).currentWrite(b(16))).toEqual({
      write: new Write(50n, WriteKind.Put),
      commitTs: 54n,
    });
    expect(await (await txnAt(60n)).currentWrite(b(16))).toEqual({
      write: new Write(60n, WriteKind.Put),
      commitTs: 66n,
    });
    expect(await (await txnAt(70n)).currentWrite(b(16))).toEqual({
      write: new Write(70n, WriteKind.Rollback),
      commitTs: 70n,
    });
    expect(await (await txnAt(55n)).currentWrite(b(16))).toBeUndefined();
    expect(await (await txnAt(50n)).currentWrite(b(17))).toBeUndefined();
  });

  it("TestMostRecentWrite4A: the newest write of the key, whatever the txn's ts", async () => {
    await seed.put([...twoVersions(), ...seed.committed(b(17), b(1), 80n, 90n)]);
    for (const ts of [1n, 55n, 100n]) {
      expect(await (await txnAt(ts)).mostRecentWrite(b(16))).toEqual({
        write: new Write(60n, WriteKind.Put),
        commitTs: 66n,
      });
    }
    expect(await (await txnAt(100n)).mostRecentWrite(b(15))).toBeUndefined();
  });
});
