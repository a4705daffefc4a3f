import { afterEach, describe, expect, it } from "vitest";
import { RawHandlers, TxnHandlers } from "../../src/kv/server/index.js";
import { RegionError } from "../../src/kv/storage/index.js";
import type { Error as RegionErrorPb } from "../../src/proto/errorpb.js";
import type { Context } from "../../src/proto/kvrpcpb.js";
import { Op } from "../../src/proto/kvrpcpb.js";
import { encodeKey } from "../../src/txn/index.js";
import { TestCluster } from "../harness/cluster.js";
import { waitFor } from "../harness/wait.js";

/**
 * Raw and transactional data never share a key space: a raw key that happens to parse as
 * Percolator's `EncodeBytes(userKey) | ts` is still routed by itself, and neither API sees the
 * other's data.
 */
describe("lab3b raw and transactional keys are never confused", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  /** Runs a handler call on the key's region leader, retrying while it answers a region error. */
  function onLeader<R extends { regionError?: RegionErrorPb | undefined }>(
    key: Buffer,
    what: string,
    call: (raw: RawHandlers, txn: TxnHandlers, ctx: Context) => Promise<R>,
    timeoutMs = 5000,
  ): Promise<R> {
    return cluster!.onLeader(
      key,
      what,
      async (storage, ctx) => {
        const res = await call(new RawHandlers(storage), new TxnHandlers(storage), ctx);
        if (res.regionError) throw new RegionError(res.regionError);
        return res;
      },
      timeoutMs,
    );
  }

  it("a 17-byte raw key shaped like an MVCC key survives a split at its 8-byte prefix and reads back", async () => {
    cluster = new TestCluster({ stores: 3 });
    await cluster.start();
    const c = cluster;
    // 7 bytes + 0x00 + 0xFE + 8 bytes: EncodeBytes("rawkey_") followed by an 8-byte "timestamp".
    const tricky = Buffer.concat([Buffer.from("rawkey_"), Buffer.from([0x00, 0xfe]), Buffer.from("12345678")]);
    const splitKey = Buffer.from("rawkey_\x00"); // "rawkey_" < splitKey <= tricky
    await c.put(tricky, "tricky-value");
    await c.put("rawkey_", "prefix-value");

    const before = c.regionFor(tricky)!;
    const leader = await waitFor(() => c.leaderOf(before.id), { timeoutMs: 5000, message: "region 1 has no leader" });
    const resp = await c.store(leader)!.proposeSplit(
      before.id,
      before.regionEpoch!,
      splitKey,
      c.allocId(),
      before.peers.map(() => c.allocId()),
    );
    expect(resp.header?.error, "the split must apply").toBeUndefined();
    await waitFor(() => c.regionFor(tricky)!.id !== c.regionFor(Buffer.from("rawkey_"))!.id, {
      timeoutMs: 5000,
      message: "the split never separated the two keys",
    });

    const read = (key: Buffer) =>
      onLeader(key, `raw get ${key.toString("hex")}`, (raw, _txn, context) => raw.rawGet({ context, key, cf: "" }));
    expect(
      (await read(tricky)).value.toString(),
      "the tricky key reads back from the region the client routes it to",
    ).toBe("tricky-value");
    expect((await read(Buffer.from("rawkey_"))).value.toString()).toBe("prefix-value");
    // It can also be overwritten there, and a scan of the right region returns it.
    await onLeader(tricky, "raw put", (raw, _txn, context) =>
      raw.rawPut({ context, key: tricky, value: Buffer.from("v2"), cf: "" }),
    );
    expect((await read(tricky)).value.toString()).toBe("v2");
    const scanned = await onLeader(splitKey, "raw scan", (raw, _txn, context) =>
      raw.rawScan({ context, startKey: splitKey, endKey: Buffer.alloc(0), limit: 10, cf: "", reverse: false }),
    );
    expect(scanned.kvs.map((kv) => kv.key.toString("hex"))).toEqual([tricky.toString("hex")]);
  });

  it("a raw scan shows raw data only after a txn put, and txn reads never see raw data", async () => {
    cluster = new TestCluster({ stores: 1 });
    await cluster.start();
    const a = Buffer.from("a");
    const b = Buffer.from("b");
    const pw = await onLeader(a, "prewrite a", (_raw, txn, context) =>
      txn.kvPrewrite({
        context,
        mutations: [{ op: Op.Put, key: a, value: Buffer.from("1") }],
        primaryLock: a,
        startVersion: 100n,
        lockTtl: 3000n,
      }),
    );
    expect(pw.errors).toEqual([]);
    const cm = await onLeader(a, "commit a", (_raw, txn, context) =>
      txn.kvCommit({ context, startVersion: 100n, keys: [a], commitVersion: 110n }),
    );
    expect(cm.error).toBeUndefined();
    await onLeader(b, "raw put b", (raw, _txn, context) =>
      raw.rawPut({ context, key: b, value: Buffer.from("2"), cf: "" }),
    );
    // A raw key spelled exactly like a committed version of user key "c".
    const lookalike = encodeKey(Buffer.from("c"), 120n);
    await onLeader(lookalike, "raw put lookalike", (raw, _txn, context) =>
      raw.rawPut({ context, key: lookalike, value: Buffer.from("raw"), cf: "write" }),
    );

    for (const cf of ["", "lock", "write"]) {
      const scan = await onLeader(Buffer.alloc(0), `raw scan ${cf}`, (raw, _txn, context) =>
        raw.rawScan({ context, startKey: Buffer.alloc(0), endKey: Buffer.alloc(0), limit: 100, cf, reverse: false }),
      );
      const want = cf === "" ? ["b=2"] : cf === "write" ? [`${lookalike.toString("hex")}=raw`] : [];
      const shown = scan.kvs.map(
        (kv) => `${kv.key.equals(lookalike) ? lookalike.toString("hex") : kv.key.toString()}=${kv.value}`,
      );
      expect(shown, `raw scan of CF ${JSON.stringify(cf)}`).toEqual(want);
    }
    const rawA = await onLeader(a, "raw get a", (raw, _txn, context) => raw.rawGet({ context, key: a, cf: "" }));
    expect(rawA.notFound, "a transactional key is not raw data").toBe(true);

    const txnScan = await onLeader(Buffer.alloc(0), "kv scan", (_raw, txn, context) =>
      txn.kvScan({ context, startKey: Buffer.alloc(0), limit: 100, version: 200n }),
    );
    expect(txnScan.pairs.map((p) => `${p.key}=${p.value}`)).toEqual(["a=1"]);
    const txnB = await onLeader(b, "kv get b", (_raw, txn, context) => txn.kvGet({ context, key: b, version: 200n }));
    expect(txnB.notFound, "raw data is not transactional data").toBe(true);
    const txnC = await onLeader(Buffer.from("c"), "kv get c", (_raw, txn, context) =>
      txn.kvGet({ context, key: Buffer.from("c"), version: 200n }),
    );
    expect(txnC.notFound, "a raw key spelled like a commit record is not one").toBe(true);
  });
});
