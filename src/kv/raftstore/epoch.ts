import type { Region, RegionEpoch } from "../../proto/metapb.js";
import type { RaftCmdRequest } from "../../proto/raft_cmdpb.js";
import { AdminCmdType } from "../../proto/raft_cmdpb.js";
import { CF_DEFAULT, isCfName } from "../engine/index.js";
import { keyInRegion } from "./keyspace.js";
import { regionErrors } from "./errors.js";
import { rangeInRegion } from "./delete-range.js";
import type { Error as RegionErrorPb } from "../../proto/errorpb.js";

/**
 * Which parts of the epoch a command must match (TinyKV's rules): data commands check the
 * version (splits move keys), ChangePeer the conf_ver, Split and TransferLeader both, CompactLog none.
 */
function epochChecks(req: RaftCmdRequest): { version: boolean; confVer: boolean } {
  const admin = req.adminRequest;
  if (!admin) return { version: true, confVer: false };
  switch (admin.cmdType) {
    case AdminCmdType.CompactLog:
      return { version: false, confVer: false };
    case AdminCmdType.ChangePeer:
      return { version: false, confVer: true };
    case AdminCmdType.Split:
    case AdminCmdType.TransferLeader:
      return { version: true, confVer: true };
    default:
      return { version: true, confVer: true };
  }
}

/** Checks the request's epoch against the region; an error answer carries the current region. */
export function checkRegionEpoch(
  req: RaftCmdRequest,
  region: Region,
  siblings: Region[] = [],
): RegionErrorPb | undefined {
  const { version, confVer } = epochChecks(req);
  if (!version && !confVer) return undefined;
  const from = req.header?.regionEpoch;
  const cur = region.regionEpoch!;
  if (!from)
    return regionErrors.epochNotMatch(`region ${region.id}: request carries no region epoch`, [region, ...siblings]);
  if ((version && from.version !== cur.version) || (confVer && from.confVer !== cur.confVer)) {
    return regionErrors.epochNotMatch(
      `region ${region.id}: epoch not match: request ${fmt(from)}, current ${fmt(cur)}`,
      [region, ...siblings],
    );
  }
  return undefined;
}

export function isEpochStale(a: RegionEpoch | undefined, b: RegionEpoch | undefined): boolean {
  if (!a || !b) return false;
  return a.version < b.version || a.confVer < b.confVer;
}

function fmt(e: RegionEpoch): string {
  return `{conf_ver: ${e.confVer}, version: ${e.version}}`;
}

/** KeyNotInRegion for the first data key of the request outside the region, if any. */
export function checkKeysInRegion(req: RaftCmdRequest, region: Region): RegionErrorPb | undefined {
  for (const r of req.requests) {
    if (r.deleteRange && !rangeInRegion(r.deleteRange, region))
      return regionErrors.keyNotInRegion(r.deleteRange.startKey, region);
    const op = r.put ?? r.delete ?? r.get;
    if (!op) continue;
    const cf = isCfName(op.cf) ? op.cf : CF_DEFAULT;
    if (!keyInRegion(cf, op.key, region)) return regionErrors.keyNotInRegion(op.key, region);
  }
  return undefined;
}
