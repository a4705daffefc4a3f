/**
 * The one-place error mappings: a transaction refusal to the wire's KeyError (fields and TinyKV's
 * texts, as clients have always seen them), a region error to and from errorpb, and a thrown
 * error to the gRPC status the server answers with.
 */
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { describeRegionError, RegionError } from "../../src/errors/region-error.js";
import { keyErrorOf, SnapshotAbortedError, toGrpcStatus, UnimplementedError } from "../../src/kv/server/index.js";
import { InvalidArgumentError, RaftEntryTooLargeError } from "../../src/kv/storage/index.js";
import { Error as RegionErrorPb } from "../../src/proto/errorpb.js";
import { KeyError } from "../../src/proto/kvrpcpb.js";
import type { TxnKeyError } from "../../src/txn/index.js";
import { Lock, WriteKind } from "../../src/txn/index.js";

const key = Buffer.from("k1");
const primary = Buffer.from("p");

describe("keyErrorOf: a transaction refusal on the wire", () => {
  const cases: [TxnKeyError, KeyError][] = [
    [
      { kind: "KeyIsLocked", key, lock: new Lock(primary, 10n, 3000n, WriteKind.Put) },
      KeyError.create({ locked: { primaryLock: primary, lockVersion: 10n, key, lockTtl: 3000n } }),
    ],
    [
      { kind: "WriteConflict", key, startTs: 10n, conflictTs: 12n, primary },
      KeyError.create({ conflict: { startTs: 10n, conflictTs: 12n, key, primary } }),
    ],
    [
      { kind: "TxnLockNotFound", key, startTs: 10n, lockTs: 7n },
      KeyError.create({ retryable: 'key "k1" is locked by txn 7, not by txn 10 being committed' }),
    ],
    [
      { kind: "TxnRolledBack", key, startTs: 10n },
      KeyError.create({ abort: 'txn 10 was rolled back on key "k1"; it cannot commit' }),
    ],
    [
      { kind: "AlreadyCommitted", key, startTs: 10n, commitTs: 11n },
      KeyError.create({ abort: 'txn 10 is already committed at 11 on key "k1"; it cannot roll back' }),
    ],
    [
      { kind: "TxnNotFound", key, startTs: 10n },
      KeyError.create({
        txnNotFound: { startTs: 10n, primaryKey: key },
        abort: 'txn 10 has no lock on "k1": it is committed or rolled back',
      }),
    ],
  ];
  for (const [error, wire] of cases) {
    it(`${error.kind} keeps its wire fields and text`, () => {
      expect(Buffer.from(KeyError.encode(keyErrorOf(error)).finish())).toEqual(
        Buffer.from(KeyError.encode(wire).finish()),
      );
    });
  }
});

describe("RegionError: one kind from the raftstore to the client", () => {
  const region = {
    id: 5n,
    startKey: Buffer.from("a"),
    endKey: Buffer.from("m"),
    regionEpoch: { confVer: 1n, version: 2n },
    peers: [],
  };
  const built = [
    RegionError.notLeader(5n, { id: 2n, storeId: 1n }),
    RegionError.notLeader(5n),
    RegionError.regionNotFound(5n),
    RegionError.keyNotInRegion(Buffer.from("z"), region),
    RegionError.epochNotMatch("region 5: epoch changed", [region]),
    RegionError.staleCommand(),
    RegionError.storeNotMatch(3n, 1n),
    RegionError.other("store 1 is stopping"),
  ];

  it("survives the wire: encode, decode, fromPb gives the same kind and message", () => {
    for (const err of built) {
      const decoded = RegionError.fromPb(RegionErrorPb.decode(RegionErrorPb.encode(err.toPb()).finish()));
      expect(decoded.kind, err.message).toEqual(err.kind);
      expect(decoded.message).toBe(err.message);
    }
  });

  it("keeps TinyKV's messages and carries its region id and key as context", () => {
    expect(RegionError.notLeader(5n).message).toBe("peer is not leader for region 5");
    expect(RegionError.regionNotFound(5n).pb).toEqual(
      RegionErrorPb.fromPartial({ message: "region is not found", regionNotFound: { regionId: 5n } }),
    );
    const notIn = RegionError.keyNotInRegion(Buffer.from("z"), region);
    expect(notIn.context).toMatchObject({ regionId: 5n, key: Buffer.from("z") });
    expect(RegionError.fromPb(RegionError.staleCommand().pb, { term: 7n }).context.term).toBe(7n);
  });

  it("is described the same way from the error or its wire form", () => {
    for (const err of built) expect(describeRegionError(err.pb)).toBe(describeRegionError(err));
    expect(describeRegionError(built[0]!)).toBe("region 5: not leader (hint: peer 2 on store 1)");
    expect(describeRegionError(RegionErrorPb.create())).toBe("region error");
  });
});

describe("toGrpcStatus: the one converter to a gRPC status", () => {
  it("maps each thrown error to the code clients have seen", () => {
    expect(toGrpcStatus(new InvalidArgumentError("key must not be empty"))).toEqual({
      code: grpc.status.INVALID_ARGUMENT,
      details: "key must not be empty",
    });
    expect(toGrpcStatus(new RaftEntryTooLargeError(5n, 10, 5)).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(toGrpcStatus(new UnimplementedError("Coprocessor"))).toEqual({
      code: grpc.status.UNIMPLEMENTED,
      details: "Coprocessor is not implemented by tinykv-ts",
    });
    expect(toGrpcStatus(new SnapshotAbortedError(new Error("crc mismatch")))).toEqual({
      code: grpc.status.ABORTED,
      details: "crc mismatch",
    });
    expect(toGrpcStatus(new Error("boom"))).toEqual({ code: grpc.status.INTERNAL, details: "boom" });
    expect(toGrpcStatus("odd")).toEqual({ code: grpc.status.INTERNAL, details: "odd" });
  });
});
