import { createHash } from "node:crypto";
import type { ConfChange } from "../../raft/index.js";
import { ConfChangeType } from "../../raft/index.js";
import type { Membership } from "../../proto/schedulerraftpb.js";
import { ClusterMember } from "../../proto/schedulerraftpb.js";

/** One member of a replicated scheduler, as `--initial-cluster` names it. */
export interface MemberSpec {
  /** Raft id: the member's 1-based position in --initial-cluster (the same list on every member). */
  id: bigint;
  name: string;
  /** host:port of the member's peer (raft) service. */
  peerAddr: string;
}

export class InitialClusterError extends Error {
  constructor(message: string) {
    super(`invalid --initial-cluster: ${message}`);
    this.name = "InitialClusterError";
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const HOST_PORT = /^(\[[^\]]+\]|[^:\s]+):\d{1,5}$/;

/** Parses `s1=127.0.0.1:2380,s2=127.0.0.1:2382,...` (etcd's form; an `http://` prefix is allowed). */
export function parseInitialCluster(spec: string): MemberSpec[] {
  const parts = spec
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  if (parts.length === 0) throw new InitialClusterError("no member given");
  const seen = new Set<string>();
  return parts.map((part, i) => {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new InitialClusterError(`${JSON.stringify(part)}: want name=host:port`);
    const name = part.slice(0, eq);
    const peerAddr = part.slice(eq + 1).replace(/^https?:\/\//, "");
    const bad = memberNameProblem(name) ?? peerAddrProblem(name, peerAddr);
    if (bad) throw new InitialClusterError(bad);
    if (seen.has(name)) throw new InitialClusterError(`member ${name} is named twice`);
    if (seen.has(peerAddr)) throw new InitialClusterError(`peer address ${peerAddr} is named twice`);
    seen.add(name);
    seen.add(peerAddr);
    return { id: BigInt(i + 1), name, peerAddr };
  });
}

/** A digest of the membership every member must agree on; peer messages carry it. */
export function clusterToken(members: readonly MemberSpec[]): string {
  const canonical = members.map((m) => `${m.id}:${m.name}=${m.peerAddr}`).join(",");
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}

/** Why `name` cannot name a member, or undefined when it can. */
export function memberNameProblem(name: string): string | undefined {
  return NAME.test(name) ? undefined : `member name ${JSON.stringify(name)}: letters, digits, _ . -`;
}

/** Why `peerAddr` (without its http:// prefix) cannot be member `name`'s peer address, or undefined. */
export function peerAddrProblem(name: string, peerAddr: string): string | undefined {
  return HOST_PORT.test(peerAddr) ? undefined : `member ${name}: ${JSON.stringify(peerAddr)} is not host:port`;
}

/** etcd accepts peer URLs with a scheme: the members' gRPC wants host:port. */
export function stripScheme(url: string): string {
  return url.trim().replace(/^https?:\/\//, "");
}

/** The membership a group started from `--initial-cluster` begins with. */
export function initialMembership(members: readonly MemberSpec[]): Membership {
  return {
    clusterToken: clusterToken(members),
    members: members.map((m) => ({ id: m.id, name: m.name, peerAddr: m.peerAddr })),
    nextMemberId: BigInt(members.length + 1),
    removed: [],
  };
}

/**
 * The membership after a committed conf change. An added member's name and address ride in the
 * change's context (a ClusterMember); a change that repeats the current state changes nothing.
 */
export function applyConfChangeTo(m: Membership, cc: ConfChange): Membership {
  if (cc.changeType === ConfChangeType.AddNode) {
    const next = cc.nodeId + 1n > m.nextMemberId ? cc.nodeId + 1n : m.nextMemberId;
    if (m.members.some((x) => x.id === cc.nodeId)) return { ...m, nextMemberId: next };
    const added = ClusterMember.decode(cc.context);
    return {
      ...m,
      members: [...m.members, { ...added, id: cc.nodeId }],
      nextMemberId: next,
      removed: m.removed.filter((x) => x.name !== added.name),
    };
  }
  const gone = m.members.find((x) => x.id === cc.nodeId);
  if (!gone) return m;
  return {
    ...m,
    members: m.members.filter((x) => x.id !== cc.nodeId),
    removed: [...m.removed.filter((x) => x.name !== gone.name), gone].slice(-REMEMBERED_REMOVALS),
  };
}

/** Removed members remembered, to answer a retried remove; a bound, so the membership stays small. */
const REMEMBERED_REMOVALS = 64;
