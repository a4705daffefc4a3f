/**
 * CheckTxnStatusResponse encodes the status as TinyKV documents it: locked <=> lock_ttl > 0,
 * committed <=> commit_version > 0, rolled back <=> both 0. A live lock whose TTL is 0 (a
 * prewrite may set lock_ttl 0), checked with a current_ts older than the lock, is not expired by
 * the TTL rule and is left in place, yet was answered lock_ttl 0, commit_version 0: "rolled back".
 * A resolver that believes it rolls back the txn's secondaries while its primary can still commit:
 * a torn transaction.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Op } from "../../src/proto/kvrpcpb.js";
import type { TxnServer } from "../lab4-txn/txn-server.js";
import { b, startTxnServer } from "../lab4-txn/txn-server.js";

const ts = (physicalMs: number) => BigInt(physicalMs) << 18n;

let srv: TxnServer;
beforeAll(async () => {
  srv = await startTxnServer();
});
afterAll(() => srv.stop());

describe("KvCheckTxnStatus of a live lock with TTL 0", () => {
  it("never answers 'rolled back' while the primary can still commit", async () => {
    const primary = b(1);
    const secondary = b(2);
    const startTs = ts(2_000);
    const pre = await srv.client.kvPrewrite({
      startVersion: startTs,
      primaryLock: primary,
      lockTtl: 0n,
      mutations: [
        { op: Op.Put, key: primary, value: b(10) },
        { op: Op.Put, key: secondary, value: b(20) },
      ],
    });
    expect(pre.errors).toEqual([]);

    const status = await srv.client.kvCheckTxnStatus({ primaryKey: primary, lockTs: startTs, currentTs: ts(1_000) });
    const answered =
      status.lockTtl > 0n ? "locked" : status.commitVersion > 0n ? "committed" : ("rolled back" as const);
    if (answered !== "rolled back") return; // the resolver backs off: fine

    // The answer says "rolled back", so a resolver that met the secondary rolls it back (KvResolveLock
    // in the secondary's region: here one store holds both keys, so roll back just that key)...
    expect((await srv.client.kvBatchRollback({ startVersion: startTs, keys: [secondary] })).error).toBeUndefined();
    // ...while the txn itself goes on to commit: its primary commits, its secondary cannot.
    const commitTs = ts(2_001);
    const primaryCommit = await srv.client.kvCommit({
      startVersion: startTs,
      commitVersion: commitTs,
      keys: [primary],
    });
    const secondaryCommit = await srv.client.kvCommit({
      startVersion: startTs,
      commitVersion: commitTs,
      keys: [secondary],
    });
    const outcome = `primary ${primaryCommit.error ? "refused" : "committed"}, secondary ${secondaryCommit.error ? "refused" : "committed"}`;
    expect(["primary committed, secondary committed", "primary refused, secondary refused"]).toContain(outcome);
  });
});
