import { ConfChangeType } from "../../proto/eraftpb.js";
import { Peer, RegionEpoch } from "../../proto/metapb.js";
import { OperatorStatus, RegionHeartbeatResponse } from "../../proto/schedulerpb.js";
import type { Decision } from "./decision.js";
import { decisionJson, decisionSummary } from "./decision.js";
import type { RegionInfo } from "../core/region-info.js";
import { epochOf, isPending, leaderStoreId, storePeer } from "../core/region-info.js";

/** Operator kind bit flags, as PD/TinyKV. */
export const OpKind = {
  Leader: 1,
  Region: 2,
  Admin: 4,
  Adjacent: 8,
  Replica: 16,
  Balance: 32,
  Merge: 64,
  Range: 128,
} as const;

export type OpStep =
  | { type: "add_peer"; toStore: bigint; peerId: bigint }
  | { type: "remove_peer"; fromStore: bigint }
  | { type: "transfer_leader"; fromStore: bigint; toStore: bigint };

/** Leader-only operators time out after 10 s, anything moving data after 10 min (TinyKV). */
export const LEADER_OPERATOR_TIMEOUT_MS = 10_000;
export const REGION_OPERATOR_TIMEOUT_MS = 10 * 60_000;

export function isStepFinished(step: OpStep, region: RegionInfo): boolean {
  switch (step.type) {
    case "add_peer": {
      const p = storePeer(region, step.toStore);
      return p !== undefined && p.id === step.peerId && !isPending(region, p.id);
    }
    case "remove_peer":
      return storePeer(region, step.fromStore) === undefined;
    case "transfer_leader":
      return leaderStoreId(region) === step.toStore;
  }
}

export function describeStep(step: OpStep): string {
  switch (step.type) {
    case "add_peer":
      return `add peer ${step.peerId} on store ${step.toStore}`;
    case "remove_peer":
      return `remove peer on store ${step.fromStore}`;
    case "transfer_leader":
      return `transfer leader from store ${step.fromStore} to store ${step.toStore}`;
  }
}

/** A plan for one region: a list of steps executed in order, each confirmed by region heartbeats. */
export class Operator {
  status: OperatorStatus = OperatorStatus.RUNNING;
  /** Why the scheduler made this operator (set by the scheduler that built it). */
  decision: Decision | undefined;
  private current = 0;
  readonly epoch: RegionEpoch;

  constructor(
    readonly desc: string,
    readonly regionId: bigint,
    epoch: RegionEpoch,
    readonly kind: number,
    readonly steps: readonly OpStep[],
    readonly createdAtMs: number,
  ) {
    this.epoch = RegionEpoch.create(epoch);
  }

  static forRegion(desc: string, region: RegionInfo, kind: number, steps: OpStep[], nowMs: number): Operator {
    return new Operator(desc, region.meta.id, epochOf(region), kind, steps, nowMs);
  }

  /** Attaches the scheduler's reasons; returns the operator for chaining. */
  because(decision: Decision): this {
    this.decision = decision;
    return this;
  }

  /** The description with its reasons, for places that only carry text (GetOperator's desc). */
  describe(): string {
    return this.decision ? `${this.desc} [${decisionSummary(this.decision)}]` : this.desc;
  }

  get length(): number {
    return this.steps.length;
  }

  step(i: number): OpStep | undefined {
    return this.steps[i];
  }

  get currentStepIndex(): number {
    return this.current;
  }

  /** Skips every finished step; returns the step still to do, or undefined when all are done. */
  check(region: RegionInfo): OpStep | undefined {
    while (this.current < this.steps.length && isStepFinished(this.steps[this.current]!, region)) this.current++;
    return this.steps[this.current];
  }

  isTimeout(nowMs: number): boolean {
    const limit = this.kind & OpKind.Region ? REGION_OPERATOR_TIMEOUT_MS : LEADER_OPERATOR_TIMEOUT_MS;
    return nowMs - this.createdAtMs > limit;
  }

  toJSON(): Record<string, unknown> {
    return {
      region_id: this.regionId.toString(),
      desc: this.desc,
      kind: kindString(this.kind),
      status: OperatorStatus[this.status],
      current_step: this.current,
      steps: this.steps.map(describeStep),
      created_at_ms: this.createdAtMs,
      decision: this.decision ? decisionJson(this.decision) : null,
    };
  }
}

export function kindString(kind: number): string {
  const names = Object.entries(OpKind)
    .filter(([, bit]) => kind & bit)
    .map(([n]) => n.toLowerCase());
  return names.length ? names.join(",") : "unknown";
}

/** The command a leader must run for `step`, or undefined when nothing needs sending now. */
export function commandFor(step: OpStep, region: RegionInfo): RegionHeartbeatResponse | undefined {
  const base = {
    regionId: region.meta.id,
    regionEpoch: RegionEpoch.create(epochOf(region)),
    targetPeer: region.leader ? Peer.create(region.leader) : undefined,
  };
  switch (step.type) {
    case "add_peer": {
      // The peer is already there but still catching up: wait, don't re-propose.
      if (storePeer(region, step.toStore)) return undefined;
      return RegionHeartbeatResponse.create({
        ...base,
        changePeer: {
          peer: Peer.create({ id: step.peerId, storeId: step.toStore }),
          changeType: ConfChangeType.AddNode,
        },
      });
    }
    case "remove_peer": {
      const peer = storePeer(region, step.fromStore);
      if (!peer) return undefined;
      return RegionHeartbeatResponse.create({
        ...base,
        changePeer: { peer: Peer.create(peer), changeType: ConfChangeType.RemoveNode },
      });
    }
    case "transfer_leader": {
      const peer = storePeer(region, step.toStore);
      if (!peer) return undefined;
      return RegionHeartbeatResponse.create({ ...base, transferLeader: { peer: Peer.create(peer) } });
    }
  }
}
