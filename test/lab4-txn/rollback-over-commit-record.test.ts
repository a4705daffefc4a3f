/**
 * A rollback record lives at EncodeKey(key, start_ts), the same place as the commit record of a
 * txn whose commit_ts equals that start_ts. A rollback (KvBatchRollback, KvCheckTxnStatus,
 * KvResolveLock) for such a start_ts must not overwrite the other txn's commit record: that
 * silently deletes committed data (TiKV keeps the commit record and marks it "overlapped").
 * The commit record there already makes a late prewrite of start_ts a write conflict.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CF_WRITE } from "../../src/kv/engine/index.js";
import { Op } from "../../src/proto/kvrpcpb.js";
import { encodeKey, Write, WriteKind } from "../../src/txn/index.js";
import type { TxnServer } from "../lab4-txn/txn-server.js";
import { b, clearAll, getCf, Seeder, startTxnServer } from "../lab4-txn/txn-server.js";

let srv: TxnServer;
let seed: Seeder;

beforeAll(async () => {
  srv = await startTxnServer();
  seed = new Seeder(srv.storage);
});
beforeEach(() => clearAll(srv.storage));
afterAll(() => srv.stop());

const commitRecord = new Write(100n, WriteKind.Put).toBytes();

async function expectCommittedValueIntact(): Promise<void> {
  const got = await srv.client.kvGet({ key: b(3), version: 120n });
  expect(got.notFound, "the value committed at 110 still reads back").toBe(false);
  expect(got.value).toEqual(b(42));
  expect(await getCf(srv.storage, CF_WRITE, encodeKey(b(3), 110n)), "txn 100's commit record at 110").toEqual(
    commitRecord,
  );
}

describe("a rollback whose start_ts equals another txn's commit_ts", () => {
  beforeEach(() => seed.put(seed.committed(b(3), b(42), 100n, 110n)));

  it("KvBatchRollback keeps the commit record", async () => {
    const res = await srv.client.kvBatchRollback({ startVersion: 110n, keys: [b(3)] });
    expect(res.error).toBeUndefined();
    await expectCommittedValueIntact();
  });

  it("KvCheckTxnStatus (no lock, no record of the txn) keeps the commit record", async () => {
    const res = await srv.client.kvCheckTxnStatus({ primaryKey: b(3), lockTs: 110n, currentTs: 130n });
    expect(res.commitVersion).toBe(0n);
    expect(res.lockTtl).toBe(0n);
    await expectCommittedValueIntact();
  });

  it("a late prewrite of the rolled-back start_ts still meets a write conflict", async () => {
    await srv.client.kvBatchRollback({ startVersion: 110n, keys: [b(3)] });
    const pre = await srv.client.kvPrewrite({
      startVersion: 110n,
      primaryLock: b(3),
      lockTtl: 10n,
      mutations: [{ op: Op.Put, key: b(3), value: b(7) }],
    });
    expect(pre.errors[0]?.conflict).toBeDefined();
  });
});
