// A scheduling simulation: the real cluster model, operator controller and coordinator (replica
// checker, balance-leader, balance-region) against simulated stores on a virtual clock. Stores apply
// conf changes after a delay, new peers catch up by snapshot after another, and leaders heartbeat
// periodically and after every change, as the raftstore does. One seed is one run.
import { ConfChangeType } from "../../src/proto/eraftpb.js";
import { Peer, Region, StoreState } from "../../src/proto/metapb.js";
import type { RegionHeartbeatResponse } from "../../src/proto/schedulerpb.js";
import { StoreStats } from "../../src/proto/schedulerpb.js";
import type { BalanceRegionOptions } from "../../src/scheduler/schedulers/balance-region.js";
import { BalanceRegionScheduler } from "../../src/scheduler/schedulers/balance-region.js";
import { ClusterModel } from "../../src/scheduler/core/cluster.js";
import { Coordinator } from "../../src/scheduler/schedule/coordinator.js";
import { IdAllocator } from "../../src/scheduler/core/id-allocator.js";
import { OperatorController } from "../../src/scheduler/schedule/operator-controller.js";
import { newRegionInfo } from "../../src/scheduler/core/region-info.js";

export interface SimOptions {
  seed: number;
  /** Stores that hold every region at the start. */
  initialStores: number;
  /** Stores that join empty at time 0. */
  newStores: number;
  regions: number;
  regionSizeMib?: number;
  /** Region sizes are drawn from regionSizeMib x [1 - spread, 1 + spread]. */
  sizeSpread?: number;
  /** Each heartbeat reports the size off by up to this fraction (approximate sizes are noisy). */
  sizeJitter?: number;
  heartbeatMs?: number;
  storeHeartbeatMs?: number;
  /** From a leader receiving a command to the change being applied. */
  applyDelayMs?: number;
  /** From a new peer being added to it having caught up (no longer pending). */
  snapshotMs?: number;
  tickMs?: number;
  durationMs: number;
  balanceRegion?: BalanceRegionOptions;
}

export interface SimResult {
  /** Peers added (replica additions), peers removed, leader transfers applied. */
  moves: number;
  removals: number;
  leaderTransfers: number;
  operatorsAdded: number;
  /** Virtual ms of the last applied change (the time to converge). */
  lastChangeAtMs: number;
  lastOperatorAtMs: number;
  /** Final region count and size (MiB) per store id, and replicas per region / pending peers at the end. */
  regionCounts: Map<number, number>;
  regionSizes: Map<number, number>;
  maxRegionSizeMib: number;
  badlyReplicated: number;
  pendingAtEnd: number;
  initialCounts: Map<number, number>;
}

interface SimRegion {
  meta: Region;
  sizeMib: number;
  leader: Peer;
  /** Peer id -> virtual ms at which it has caught up. */
  catchingUp: Map<bigint, number>;
  /** A change in flight (raft allows one conf change at a time). */
  busy: boolean;
}

type Event = { at: number; seq: number; run: () => void | Promise<void> };

export function seededRng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4_294_967_296;
  };
}

export class BalanceSim {
  now = 1_700_000_000_000;
  readonly start = this.now;
  readonly cluster: ClusterModel;
  readonly oc: OperatorController;
  readonly coordinator: Coordinator;
  private readonly regions = new Map<bigint, SimRegion>();
  private readonly events: Event[] = [];
  private seq = 0;
  private readonly rng: () => number;
  private readonly o: Required<Omit<SimOptions, "balanceRegion">> & { balanceRegion?: BalanceRegionOptions };
  private readonly result: SimResult;

  constructor(opts: SimOptions) {
    this.o = {
      regionSizeMib: 10,
      sizeSpread: 0,
      sizeJitter: 0,
      heartbeatMs: 1000,
      storeHeartbeatMs: 2000,
      applyDelayMs: 100,
      snapshotMs: 2000,
      tickMs: 100,
      ...opts,
    };
    this.rng = seededRng(opts.seed);
    this.cluster = new ClusterModel({ clock: () => this.now, rng: seededRng(opts.seed * 7919 + 1), maxReplicas: 3 });
    this.oc = new OperatorController(() => this.now);
    this.oc.setSink((cmd) => this.onCommand(cmd));
    const ids = new IdAllocator(async () => {}, 10_000_000n, 1000n);
    this.coordinator = new Coordinator(this.cluster, this.oc, ids, {
      balanceRegion: new BalanceRegionScheduler(opts.balanceRegion),
      prepareTimeoutMs: 0,
    });
    this.result = {
      moves: 0,
      removals: 0,
      leaderTransfers: 0,
      operatorsAdded: 0,
      lastChangeAtMs: 0,
      lastOperatorAtMs: 0,
      regionCounts: new Map(),
      regionSizes: new Map(),
      maxRegionSizeMib: 0,
      badlyReplicated: 0,
      pendingAtEnd: 0,
      initialCounts: new Map(),
    };
    this.setup();
  }

  private setup(): void {
    const { initialStores, newStores, regions } = this.o;
    for (let s = 1; s <= initialStores + newStores; s++) {
      this.cluster.putStore({
        id: BigInt(s),
        address: `127.0.0.1:${20160 + s}`,
        state: StoreState.Up,
        statusAddress: "",
      });
    }
    let peerId = 1000n;
    for (let i = 1; i <= regions; i++) {
      const stores = [1, 2, 3].map((k) => ((i + k) % initialStores) + 1);
      const peers = stores.map((s) => Peer.create({ id: ++peerId, storeId: BigInt(s) }));
      const key = (n: number) => (n > regions ? Buffer.alloc(0) : Buffer.from(`k${String(n).padStart(6, "0")}`));
      const meta = Region.create({
        id: BigInt(i),
        startKey: i === 1 ? Buffer.alloc(0) : key(i),
        endKey: key(i + 1),
        regionEpoch: { confVer: 3n, version: 1n },
        peers,
      });
      const sizeMib = Math.round(this.o.regionSizeMib * (1 + this.o.sizeSpread * (2 * this.rng() - 1)));
      const r: SimRegion = { meta, sizeMib, leader: peers[i % 3]!, catchingUp: new Map(), busy: false };
      this.regions.set(meta.id, r);
      this.heartbeat(r);
      // Periodic heartbeats, staggered over the interval.
      this.every(Math.floor(this.rng() * this.o.heartbeatMs), this.o.heartbeatMs, () => this.heartbeat(r));
    }
    for (const s of this.cluster.getStores()) this.result.initialCounts.set(Number(s.id), s.regionCount);
    for (const s of this.cluster.getStores()) {
      this.every(Math.floor(this.rng() * this.o.storeHeartbeatMs), this.o.storeHeartbeatMs, () => {
        this.cluster.storeHeartbeat(StoreStats.create({ storeId: s.id, regionCount: s.regionCount }));
      });
    }
    this.every(0, this.o.tickMs, async () => {
      const added = await this.coordinator.tick();
      if (added.length > 0) {
        this.result.operatorsAdded += added.length;
        this.result.lastOperatorAtMs = this.now - this.start;
      }
    });
  }

  async run(): Promise<SimResult> {
    const end = this.start + this.o.durationMs;
    while (this.events.length > 0 && this.events[0]!.at <= end) {
      const ev = this.events.shift()!;
      this.now = ev.at;
      await ev.run();
    }
    this.now = end;
    for (const s of this.cluster.getStores()) this.result.regionCounts.set(Number(s.id), s.regionCount);
    for (const r of this.regions.values()) {
      this.result.maxRegionSizeMib = Math.max(this.result.maxRegionSizeMib, r.sizeMib);
      for (const p of r.meta.peers) {
        const id = Number(p.storeId);
        this.result.regionSizes.set(id, (this.result.regionSizes.get(id) ?? 0) + r.sizeMib);
      }
      if (r.meta.peers.length !== 3) this.result.badlyReplicated++;
      this.result.pendingAtEnd += r.catchingUp.size;
    }
    return this.result;
  }

  private at(delayMs: number, run: Event["run"]): void {
    const ev: Event = { at: this.now + delayMs, seq: this.seq++, run };
    let i = this.events.length;
    while (
      i > 0 &&
      (this.events[i - 1]!.at > ev.at || (this.events[i - 1]!.at === ev.at && this.events[i - 1]!.seq > ev.seq))
    )
      i--;
    this.events.splice(i, 0, ev);
  }

  private every(firstMs: number, periodMs: number, run: () => void | Promise<void>): void {
    this.at(firstMs, async () => {
      await run();
      this.every(periodMs, periodMs, run);
    });
  }

  /** What the leader reports: the region, itself, the peers still catching up, the size. */
  private heartbeat(r: SimRegion): void {
    for (const [id, doneAt] of r.catchingUp) if (doneAt <= this.now) r.catchingUp.delete(id);
    const pendingPeers = r.meta.peers.filter((p) => r.catchingUp.has(p.id));
    const noise = this.o.sizeJitter > 0 ? 1 + this.o.sizeJitter * (2 * this.rng() - 1) : 1;
    const info = newRegionInfo(r.meta, r.leader, {
      pendingPeers,
      approximateSize: Math.max(1, Math.round(r.sizeMib * noise)),
    });
    this.cluster.processRegionHeartbeat(info);
    this.coordinator.markSeen(r.meta.id);
    this.oc.dispatch(info);
  }

  /** The leader proposes the command; a stale epoch or a change already in flight refuses it. */
  private onCommand(cmd: RegionHeartbeatResponse): void {
    const r = this.regions.get(cmd.regionId);
    if (!r || r.busy) return;
    const epoch = r.meta.regionEpoch!;
    if (cmd.regionEpoch?.confVer !== epoch.confVer || cmd.regionEpoch.version !== epoch.version) return;
    r.busy = true;
    this.at(this.o.applyDelayMs, () => {
      r.busy = false;
      if (this.apply(r, cmd)) {
        this.result.lastChangeAtMs = this.now - this.start;
        this.heartbeat(r);
      }
    });
  }

  private apply(r: SimRegion, cmd: RegionHeartbeatResponse): boolean {
    if (cmd.transferLeader) {
      const to = r.meta.peers.find((p) => p.id === cmd.transferLeader!.peer?.id);
      if (!to || r.catchingUp.has(to.id) || to.id === r.leader.id) return false;
      r.leader = to;
      this.result.leaderTransfers++;
      return true;
    }
    const change = cmd.changePeer;
    if (!change?.peer) return false;
    const epoch = r.meta.regionEpoch!;
    if (change.changeType === ConfChangeType.AddNode) {
      if (r.meta.peers.some((p) => p.storeId === change.peer!.storeId)) return false;
      r.meta = Region.create({
        ...r.meta,
        peers: [...r.meta.peers, Peer.create(change.peer)],
        regionEpoch: { ...epoch, confVer: epoch.confVer + 1n },
      });
      r.catchingUp.set(change.peer.id, this.now + this.o.snapshotMs);
      this.result.moves++;
      return true;
    }
    if (change.changeType === ConfChangeType.RemoveNode) {
      if (change.peer.id === r.leader.id || !r.meta.peers.some((p) => p.id === change.peer!.id)) return false;
      r.meta = Region.create({
        ...r.meta,
        peers: r.meta.peers.filter((p) => p.id !== change.peer!.id),
        regionEpoch: { ...epoch, confVer: epoch.confVer + 1n },
      });
      r.catchingUp.delete(change.peer.id);
      this.result.removals++;
      return true;
    }
    return false;
  }
}

/** Replica moves the new stores need at least: enough to bring every store up to floor(ideal). */
export function minimalMoves(initial: Map<number, number>): number {
  const counts = [...initial.values()];
  const ideal = Math.floor(counts.reduce((a, b) => a + b, 0) / counts.length);
  return counts.reduce((sum, c) => sum + Math.max(0, ideal - c), 0);
}

export function describeResult(opts: SimOptions, r: SimResult): string {
  const counts = [...r.regionCounts.values()];
  const spread = Math.max(...counts) - Math.min(...counts);
  return (
    `balance-sim seed=${opts.seed} ${opts.initialStores}+${opts.newStores} stores, ${opts.regions} regions: ` +
    `${r.moves} replica moves (minimal ${minimalMoves(r.initialCounts)}), ${r.leaderTransfers} leader transfers, ` +
    `${r.operatorsAdded} operators, last change at ${(r.lastChangeAtMs / 1000).toFixed(1)} s virtual, ` +
    `final region counts ${counts.join("/")} (spread ${spread}), ` +
    (opts.sizeSpread || opts.sizeJitter ? `sizes ${[...r.regionSizes.values()].join("/")} MiB, ` : "") +
    `last operator at ${(r.lastOperatorAtMs / 1000).toFixed(1)} s of ${opts.durationMs / 1000} s`
  );
}
