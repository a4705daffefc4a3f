/**
 * The one region error kind, shared by the raftstore (which answers with it), the server (which
 * puts it in a response's `region_error`) and the client (which retries on it). On the wire it is
 * `errorpb.Error`; `fromPb`/`toPb` convert, and `describeRegionError` says it in words for both sides.
 */
import { Error as RegionErrorPb } from "../proto/errorpb.js";
import type { Peer, Region } from "../proto/metapb.js";
import { formatKey } from "../util/bytes.js";
import { TinyKvError } from "../util/errors.js";

/** What a region error says, one case per errorpb field (`Other`: only a message, e.g. a store that is stopping). */
export type RegionErrorKind =
  | { kind: "NotLeader"; regionId: bigint; leader: Peer | undefined }
  | { kind: "RegionNotFound"; regionId: bigint }
  | { kind: "KeyNotInRegion"; key: Buffer; regionId: bigint; startKey: Buffer; endKey: Buffer }
  | { kind: "EpochNotMatch"; currentRegions: Region[] }
  | { kind: "StaleCommand" }
  | { kind: "StoreNotMatch"; requestStoreId: bigint; actualStoreId: bigint }
  /** A stale read above the answering peer's safe ts: retry at the leader. */
  | { kind: "DataIsNotReady"; regionId: bigint; peerId: bigint; safeTs: bigint }
  | { kind: "Other" };

/**
 * Reads the kind of a wire region error. A peer (or a hostile client) may set several fields:
 * the first in this order wins, the same order the client's region cache acts on.
 */
export function regionErrorKindOf(pb: RegionErrorPb): RegionErrorKind {
  if (pb.notLeader) return { kind: "NotLeader", regionId: pb.notLeader.regionId, leader: pb.notLeader.leader };
  if (pb.regionNotFound) return { kind: "RegionNotFound", regionId: pb.regionNotFound.regionId };
  if (pb.keyNotInRegion) return { kind: "KeyNotInRegion", ...pb.keyNotInRegion };
  if (pb.epochNotMatch) return { kind: "EpochNotMatch", currentRegions: pb.epochNotMatch.currentRegions };
  if (pb.staleCommand) return { kind: "StaleCommand" };
  if (pb.storeNotMatch) return { kind: "StoreNotMatch", ...pb.storeNotMatch };
  if (pb.dataIsNotReady) return { kind: "DataIsNotReady", ...pb.dataIsNotReady };
  return { kind: "Other" };
}

/** The wire form of a kind and its message. */
export function regionErrorPbOf(k: RegionErrorKind, message: string): RegionErrorPb {
  switch (k.kind) {
    case "NotLeader":
      return RegionErrorPb.fromPartial({ message, notLeader: { regionId: k.regionId, leader: k.leader } });
    case "RegionNotFound":
      return RegionErrorPb.fromPartial({ message, regionNotFound: { regionId: k.regionId } });
    case "KeyNotInRegion":
      return RegionErrorPb.fromPartial({
        message,
        keyNotInRegion: { key: k.key, regionId: k.regionId, startKey: k.startKey, endKey: k.endKey },
      });
    case "EpochNotMatch":
      return RegionErrorPb.fromPartial({ message, epochNotMatch: { currentRegions: k.currentRegions } });
    case "StaleCommand":
      return RegionErrorPb.fromPartial({ message, staleCommand: {} });
    case "StoreNotMatch":
      return RegionErrorPb.fromPartial({
        message,
        storeNotMatch: { requestStoreId: k.requestStoreId, actualStoreId: k.actualStoreId },
      });
    case "DataIsNotReady":
      return RegionErrorPb.fromPartial({
        message,
        dataIsNotReady: { regionId: k.regionId, peerId: k.peerId, safeTs: k.safeTs },
      });
    case "Other":
      return RegionErrorPb.fromPartial({ message });
  }
}

/** A region error in words, for error messages and logs on the server and the client alike. */
export function describeRegionError(err: RegionError | RegionErrorPb): string {
  const [k, message] = err instanceof RegionError ? [err.kind, err.wireMessage] : [regionErrorKindOf(err), err.message];
  switch (k.kind) {
    case "NotLeader": {
      const hint = k.leader ? `peer ${k.leader.id} on store ${k.leader.storeId}` : "none";
      return `region ${k.regionId}: not leader (hint: ${hint})`;
    }
    case "RegionNotFound":
      return `region ${k.regionId} not found`;
    case "KeyNotInRegion":
      return `key ${formatKey(k.key)} not in region ${k.regionId}`;
    case "EpochNotMatch":
      return `epoch not match (${k.currentRegions.length} current regions)${message ? `: ${message}` : ""}`;
    case "StaleCommand":
      return message && message !== "stale command" ? `stale command: ${message}` : "stale command";
    case "StoreNotMatch":
      return `store not match (request for store ${k.requestStoreId}, this is store ${k.actualStoreId})`;
    case "DataIsNotReady":
      return `region ${k.regionId}: data is not ready on peer ${k.peerId} (safe ts ${k.safeTs})`;
    case "Other":
      return message || "region error";
  }
}

function regionIdOf(k: RegionErrorKind): bigint | undefined {
  return k.kind === "NotLeader" ||
    k.kind === "RegionNotFound" ||
    k.kind === "KeyNotInRegion" ||
    k.kind === "DataIsNotReady"
    ? k.regionId
    : undefined;
}

/**
 * A routing or leadership error that the client fixes by retrying elsewhere. Thrown inside a
 * store (RaftStorage raises it from the raftstore's answer), carried on the wire in
 * `region_error`, and read back by the client.
 */
export class RegionError extends TinyKvError {
  readonly kind: RegionErrorKind;
  /** The wire form (the same object on every read). */
  readonly pb: RegionErrorPb;

  /** From the wire form; `term` is the answering peer's term where known. */
  constructor(pb: RegionErrorPb, opts: { term?: bigint; cause?: unknown } = {}) {
    const kind = regionErrorKindOf(pb);
    super(pb.message || describeRegionError(pb), {
      cause: opts.cause,
      context: {
        regionId: regionIdOf(kind),
        key: kind.kind === "KeyNotInRegion" ? kind.key : undefined,
        term: opts.term,
      },
      answer: true,
    });
    this.kind = kind;
    this.pb = pb;
  }

  static fromPb(pb: RegionErrorPb, opts: { term?: bigint } = {}): RegionError {
    return new RegionError(pb, opts);
  }

  toPb(): RegionErrorPb {
    return this.pb;
  }

  /** The message as the wire carries it (may be empty for an error from elsewhere). */
  get wireMessage(): string {
    return this.pb.message;
  }

  // The builders below carry TinyKV's messages (the wire's `message` field).

  static notLeader(regionId: bigint, leader?: Peer): RegionError {
    return new RegionError(regionErrorPbs.notLeader(regionId, leader));
  }

  static regionNotFound(regionId: bigint): RegionError {
    return new RegionError(regionErrorPbs.regionNotFound(regionId));
  }

  static keyNotInRegion(key: Buffer, region: Region): RegionError {
    return new RegionError(regionErrorPbs.keyNotInRegion(key, region));
  }

  static epochNotMatch(message: string, currentRegions: Region[]): RegionError {
    return new RegionError(regionErrorPbs.epochNotMatch(message, currentRegions));
  }

  static staleCommand(message = "stale command"): RegionError {
    return new RegionError(regionErrorPbs.staleCommand(message));
  }

  static storeNotMatch(requestStoreId: bigint, actualStoreId: bigint): RegionError {
    return new RegionError(regionErrorPbs.storeNotMatch(requestStoreId, actualStoreId));
  }

  static other(message: string): RegionError {
    return new RegionError(regionErrorPbs.other(message));
  }
}

/**
 * The wire forms of the region errors, with TinyKV's messages: what a raftstore answers with.
 * Built without a RegionError, whose stack capture would be paid on every refused request.
 */
export const regionErrorPbs = {
  notLeader: (regionId: bigint, leader?: Peer): RegionErrorPb =>
    regionErrorPbOf({ kind: "NotLeader", regionId, leader }, `peer is not leader for region ${regionId}`),
  regionNotFound: (regionId: bigint): RegionErrorPb =>
    regionErrorPbOf({ kind: "RegionNotFound", regionId }, "region is not found"),
  keyNotInRegion: (key: Buffer, region: Region): RegionErrorPb =>
    regionErrorPbOf(
      { kind: "KeyNotInRegion", key, regionId: region.id, startKey: region.startKey, endKey: region.endKey },
      `key is not in region ${region.id}`,
    ),
  epochNotMatch: (message: string, currentRegions: Region[]): RegionErrorPb =>
    regionErrorPbOf({ kind: "EpochNotMatch", currentRegions }, message),
  staleCommand: (message = "stale command"): RegionErrorPb => regionErrorPbOf({ kind: "StaleCommand" }, message),
  storeNotMatch: (requestStoreId: bigint, actualStoreId: bigint): RegionErrorPb =>
    regionErrorPbOf(
      { kind: "StoreNotMatch", requestStoreId, actualStoreId },
      `store not match: request for store ${requestStoreId}, this is store ${actualStoreId}`,
    ),
  dataIsNotReady: (regionId: bigint, peerId: bigint, safeTs: bigint, readTs: bigint): RegionErrorPb =>
    regionErrorPbOf(
      { kind: "DataIsNotReady", regionId, peerId, safeTs },
      `data is not ready: region ${regionId} peer ${peerId} has safe ts ${safeTs} < read ts ${readTs}`,
    ),
  other: (message: string): RegionErrorPb => regionErrorPbOf({ kind: "Other" }, message),
};
