/**
 * Conf changes on a schedule drawn from the seed, so they happen all through a run rather than
 * only when the balance schedulers see a reason: every second or so the simulation asks the real
 * scheduler, in process and through its operator API (the way an operator's tool would), to move
 * a peer, transfer a leader, or remove a peer and add it back on the same store (a new peer id
 * where a tombstone of the old one may linger). The operators then run as any other: dispatched
 * on region heartbeats, with their timeouts, and raced by the faults.
 */
import type { SchedulerCore } from "../../../src/scheduler/core/core.js";
import type { RegionInfo } from "../../../src/scheduler/core/region-info.js";
import { leaderStoreId, storeIdsOf } from "../../../src/scheduler/core/region-info.js";
import { isTargetSuitable } from "../../../src/scheduler/schedule/filters.js";
import {
  movePeerOperator,
  removePeerOperator,
  transferLeaderOperator,
} from "../../../src/scheduler/schedule/op-builder.js";
import { Operator, OpKind } from "../../../src/scheduler/schedule/operator.js";
import { OperatorStatus } from "../../../src/proto/schedulerpb.js";
import type { Rng } from "../../../src/util/random.js";

export type ReconfigurationKind = "move-peer" | "transfer-leader" | "remove-readd";

export const RECONFIGURATION_KINDS: readonly ReconfigurationKind[] = ["move-peer", "transfer-leader", "remove-readd"];

export interface Reconfiguration {
  at: number;
  kind: ReconfigurationKind;
}

/** One request every `meanGapMs` on average (half to one and a half of it apart), from `startMs` to `endMs`. */
export function drawReconfigurations(rng: Rng, startMs: number, endMs: number, meanGapMs: number): Reconfiguration[] {
  const out: Reconfiguration[] = [];
  if (meanGapMs <= 0) return out;
  for (let t = startMs + Math.floor(rng() * meanGapMs); t < endMs; t += Math.floor(meanGapMs * (0.5 + rng()))) {
    out.push({ at: t, kind: RECONFIGURATION_KINDS[Math.floor(rng() * RECONFIGURATION_KINDS.length)]! });
  }
  return out;
}

export function describeReconfiguration(r: Reconfiguration): string {
  return `${r.at.toFixed(0)}ms ${r.kind}`;
}

function pick<T>(rng: Rng, items: readonly T[]): T | undefined {
  return items.length === 0 ? undefined : items[Math.floor(rng() * items.length)];
}

/**
 * Adds the operator `kind` asks for on a region drawn with `rng` (fully replicated, led, no peer
 * move running on it, and for a peer change no peer catching up); returns what it did, for the trace.
 */
export function reconfigure(core: SchedulerCore, kind: ReconfigurationKind, rng: Rng): string {
  const cluster = core.cluster;
  // A running leader-only operator (balance-leader keeps one on most regions) gives way, as PD's
  // REPLACE does for a higher-priority operator; one that moves peers is left to finish.
  const busy = (r: RegionInfo) => {
    const running = core.oc.get(r.meta.id);
    return running !== undefined && (running.kind & OpKind.Region) !== 0;
  };
  const candidates = cluster.regions
    .all()
    .filter(
      (r) =>
        r.leader !== undefined &&
        (kind === "transfer-leader" || r.pendingPeers.length === 0) &&
        r.meta.peers.length === cluster.maxReplicas &&
        !busy(r),
    )
    .sort((a, b) => (a.meta.id < b.meta.id ? -1 : 1));
  const region = pick(rng, candidates);
  if (!region) return `${kind}: skipped, no region is led, fully replicated and free of peer moves`;
  const op = build(core, kind, region, rng);
  if (typeof op === "string") return `${kind} region ${region.meta.id}: skipped, ${op}`;
  const replaced = core.oc.get(region.meta.id);
  if (replaced) core.oc.finish(region.meta.id, OperatorStatus.REPLACE);
  core.oc.add(op, region);
  return replaced ? `${op.desc} (replaces "${replaced.desc}")` : op.desc;
}

function build(core: SchedulerCore, kind: ReconfigurationKind, region: RegionInfo, rng: Rng): Operator | string {
  const cluster = core.cluster;
  const id = region.meta.id;
  const leader = leaderStoreId(region)!;
  const holding = storeIdsOf(region);
  const suitable = cluster
    .getStores()
    .filter((s) => isTargetSuitable(cluster, s))
    .map((s) => s.id)
    .sort((a, b) => (a < b ? -1 : 1));
  const peerStores = [...holding].sort((a, b) => (a < b ? -1 : 1));
  if (core.ids.available() < 1n) return "no peer id reserved";
  switch (kind) {
    case "move-peer": {
      const source = pick(rng, peerStores)!;
      const target = pick(
        rng,
        suitable.filter((s) => !holding.has(s)),
      );
      if (target === undefined) return "no store without a peer can take one";
      const desc = `sim: move region ${id} from store ${source} to store ${target}`;
      return movePeerOperator(cluster, desc, region, source, target, core.ids.allocSync(), OpKind.Admin);
    }
    case "transfer-leader": {
      const pending = new Set(region.pendingPeers.map((p) => p.storeId));
      const target = pick(
        rng,
        suitable.filter((s) => s !== leader && holding.has(s) && !pending.has(s)),
      );
      if (target === undefined) return "no follower can take the leadership";
      const desc = `sim: transfer region ${id}'s leader from store ${leader} to store ${target}`;
      return transferLeaderOperator(cluster, desc, region, leader, target, OpKind.Admin);
    }
    case "remove-readd": {
      const store = pick(
        rng,
        peerStores.filter((s) => suitable.includes(s)),
      );
      if (store === undefined) return "no peer on a healthy store";
      const desc = `sim: remove region ${id}'s peer on store ${store} and add it back`;
      const remove = removePeerOperator(cluster, desc, region, store, OpKind.Admin);
      if (!remove) return "nobody else can lead";
      const steps = [...remove.steps, { type: "add_peer" as const, toStore: store, peerId: core.ids.allocSync() }];
      return Operator.forRegion(desc, region, remove.kind, steps, cluster.clock());
    }
  }
}
