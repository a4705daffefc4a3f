import { createHash } from "node:crypto";

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
    if (!NAME.test(name)) throw new InitialClusterError(`member name ${JSON.stringify(name)}: letters, digits, _ . -`);
    if (!HOST_PORT.test(peerAddr))
      throw new InitialClusterError(`member ${name}: ${JSON.stringify(peerAddr)} is not host:port`);
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
