import { Metadata } from "@grpc/grpc-js";
import type { Membership } from "../../proto/schedulerraftpb.js";
import { SchedulerPeerClient } from "../../proto/schedulerraftpb.js";
import type { Logger } from "../../util/logger.js";
import { retryWithBackoff } from "../../util/retry.js";
import type { Runtime } from "../../util/runtime.js";
import type { TlsConfig } from "../../util/tls.js";
import { grpcChannelCredentials } from "../../util/tls.js";
import type { MemberStorage } from "./member-storage.js";
import type { MemberSpec } from "./members.js";
import { InitialClusterError, initialMembership } from "./members.js";

/** etcd's --initial-cluster-state: start a new group, or join one that runs (after `member add`). */
export type InitialClusterState = "new" | "existing";

/** How long a joining member keeps asking the others for the membership (the add may still be applying). */
export const DEFAULT_JOIN_DEADLINE_MS = 30_000;
const ASK_TIMEOUT_MS = 2_000;

/** Where this member stands at start: who it is, and whom it talks to until the log says otherwise. */
export interface StartingMembership {
  self: MemberSpec;
  /** The stored membership, or (joining) the one the group told us. */
  membership: Membership;
  /** False while joining: raft starts with no members and learns them from the leader's snapshot. */
  stored: boolean;
}

export interface ResolveOptions {
  name: string;
  initialCluster: readonly MemberSpec[];
  state: InitialClusterState;
  tls?: TlsConfig;
  runtime: Runtime;
  log: Logger;
  joinDeadlineMs?: number;
}

function specOf(m: { id: bigint; name: string; peerAddr: string }): MemberSpec {
  return { id: m.id, name: m.name, peerAddr: m.peerAddr };
}

/**
 * The membership a member starts from. A stored one wins over the flags (a restart after
 * membership changes must not fall back to --initial-cluster); else a new group's members are
 * --initial-cluster; else (existing) the running group is asked, over the peer addresses in
 * --initial-cluster, for its membership, which must already name this member.
 */
export async function resolveMembership(storage: MemberStorage, o: ResolveOptions): Promise<StartingMembership> {
  const recorded = storage.self;
  if (recorded && recorded.name !== o.name)
    throw new InitialClusterError(`this data dir belongs to member ${recorded.name}, not --name ${o.name}`);
  const stored = storage.membership;
  if (stored) {
    const self = recorded ?? stored.members.find((m) => m.name === o.name);
    if (!self)
      throw new InitialClusterError(
        `member ${o.name} is not in the group's stored membership (${stored.members.map((m) => m.name).join(",")}): was it removed?`,
      );
    if (!recorded) await storage.recordSelf(self);
    return { self: specOf(self), membership: stored, stored: true };
  }
  // A data dir that records its member but no membership joined and awaits its first snapshot:
  // it goes on joining whatever the flag says (a "new" start would invent a membership).
  if (o.state === "new" && !recorded) {
    const self = o.initialCluster.find((m) => m.name === o.name);
    if (!self) throw new InitialClusterError(`this member's --name ${o.name} is not in it`);
    await storage.bootstrapMembership(initialMembership(o.initialCluster));
    await storage.recordSelf({ ...self });
    return { self, membership: storage.membership!, stored: true };
  }
  const membership = await askForMembership(o);
  const self = membership.members.find((m) => m.name === o.name)!;
  if (recorded && recorded.id !== self.id)
    throw new InitialClusterError(`member ${o.name} was added again with a new id: start it with an empty data dir`);
  if (!recorded) await storage.recordSelf(self);
  return { self: specOf(self), membership, stored: false };
}

/** Asks the members named in --initial-cluster, in turn, until one tells a membership that names us. */
async function askForMembership(o: ResolveOptions): Promise<Membership> {
  const others = o.initialCluster.filter((m) => m.name !== o.name);
  if (others.length === 0)
    throw new InitialClusterError(`--initial-cluster-state existing needs the running members in --initial-cluster`);
  const clients = others.map((m) => ({ m, c: new SchedulerPeerClient(m.peerAddr, grpcChannelCredentials(o.tls)) }));
  let notListed: string | undefined;
  try {
    return await retryWithBackoff(
      async () => {
        const problems: string[] = [];
        for (const { m, c } of clients) {
          try {
            const got = await ask(c, o);
            if (!got || got.members.length === 0) {
              problems.push(`${m.name}: knows no membership yet`);
              continue;
            }
            if (got.members.some((x) => x.name === o.name)) return got;
            notListed = got.members.map((x) => x.name).join(",");
            problems.push(`${m.name}: the group (${notListed}) has no member ${o.name}`);
          } catch (err) {
            problems.push(`${m.name} at ${m.peerAddr}: ${(err as Error).message}`);
          }
        }
        throw new JoinError(problems.join("; "));
      },
      {
        what: `asking the scheduler group for its membership (member ${o.name} joining)`,
        deadlineMs: o.joinDeadlineMs ?? DEFAULT_JOIN_DEADLINE_MS,
        initialBackoffMs: 200,
        maxBackoffMs: 2_000,
        retryable: (err) => err instanceof JoinError,
        runtime: o.runtime,
      },
    );
  } catch (err) {
    const hint = notListed
      ? ` Add it first: tinykv-ctl scheduler member add ${o.name} <its peer address>.`
      : " Are the others running, and is --initial-cluster right?";
    throw new InitialClusterError(`cannot join the running group: ${(err as Error).message}.${hint}`);
  } finally {
    for (const { c } of clients) c.close();
  }
}

class JoinError extends Error {
  override name = "JoinError";
}

function ask(c: SchedulerPeerClient, o: ResolveOptions): Promise<Membership | undefined> {
  return new Promise((resolve, reject) =>
    c.members(
      { name: o.name },
      new Metadata(),
      { deadline: new Date(o.runtime.now() + ASK_TIMEOUT_MS) },
      (err, resp) => (err ? reject(new Error(err.details || err.message)) : resolve(resp.membership)),
    ),
  );
}
