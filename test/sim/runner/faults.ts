/**
 * The fault schedule, drawn from the seed before the run starts (so it prints on failure and
 * replays), and the code that switches each fault on and off on a TestCluster.
 */
import type { TestCluster } from "../../harness/cluster.js";
import type { MessageFilter } from "../../../src/kv/transport/filters.js";
import { delay, dropRate, duplicate, isolate, reorder } from "../../../src/kv/transport/filters.js";
import type { Rng } from "../../../src/util/random.js";
import type { NodeClock } from "./sim-runtime.js";

export type FaultKind =
  | "crash"
  | "power-loss"
  | "isolate"
  | "one-way"
  | "drop"
  | "delay"
  | "reorder-dup"
  | "slow-disk"
  | "failing-fsync"
  | "clock-skew"
  | "clock-jump"
  | "pause";

export const FAULT_KINDS: readonly FaultKind[] = [
  "crash",
  "power-loss",
  "isolate",
  "one-way",
  "drop",
  "delay",
  "reorder-dup",
  "slow-disk",
  "failing-fsync",
  "clock-skew",
  "clock-jump",
  "pause",
];

/** The largest clock skew or step a clock fault draws, either way. */
const MAX_CLOCK_FAULT_MS = 5_000;

export interface Fault {
  kind: FaultKind;
  /** Simulated ms since the start. */
  at: number;
  durationMs: number;
  store: bigint;
  /** one-way: the store that hears nothing from `store` while `store` hears it. */
  other: bigint;
  /** clock-skew: the store's clock is this far off while the fault lasts; clock-jump: the step it takes at the start (and keeps). */
  clockMs?: number;
}

export function describeFault(f: Fault): string {
  const who = f.kind === "one-way" ? `${f.store}-/->${f.other}` : `store ${f.store}`;
  const clock = f.clockMs === undefined ? "" : ` ${f.clockMs >= 0 ? "+" : ""}${f.clockMs}ms`;
  return `${f.at.toFixed(0)}ms +${f.durationMs.toFixed(0)}ms ${f.kind} ${who}${clock}`;
}

/** Faults one after another (sometimes overlapping) from `startMs` until `endMs`, of `kinds` (default: all). */
export function drawFaults(
  rng: Rng,
  stores: number,
  startMs: number,
  endMs: number,
  kinds: readonly FaultKind[] = FAULT_KINDS,
): Fault[] {
  const faults: Fault[] = [];
  let t = startMs;
  while (t < endMs) {
    const kind = kinds[Math.floor(rng() * kinds.length)]!;
    const store = BigInt(1 + Math.floor(rng() * stores));
    const other = BigInt(1 + ((Number(store) + Math.floor(rng() * (stores - 1))) % stores));
    const durationMs = Math.min(200 + Math.floor(rng() * 2_800), endMs - t);
    const fault: Fault = { kind, at: t, durationMs, store, other };
    if (kind === "clock-skew" || kind === "clock-jump")
      fault.clockMs = Math.round((rng() * 2 - 1) * MAX_CLOCK_FAULT_MS);
    faults.push(fault);
    // A third of the time the next fault starts while this one is still on.
    t += rng() < 0.33 ? Math.floor(rng() * durationMs) : durationMs + Math.floor(rng() * 1_000);
  }
  return faults;
}

/**
 * Switches faults on and off. Stores that are down stay down until their fault ends (or the
 * heal); a store is restarted only by the fault that took it down.
 */
export class FaultInjector {
  private readonly down = new Set<bigint>();
  private readonly slowDisks = new Set<bigint>();
  private readonly removers = new Set<() => void>();
  private readonly failingSyncs = new Set<bigint>();
  /** Clock skews on now, to undo at their end or the heal. */
  private readonly skews = new Map<Fault, NodeClock>();
  private readonly paused = new Set<NodeClock>();

  constructor(
    private readonly cluster: TestCluster,
    private readonly rng: Rng,
    private readonly onEvent: (line: string) => void,
    /** A store's own clock view (what its Store was given). */
    private readonly clockOf: (store: bigint) => NodeClock,
  ) {}

  /** Turns `f` on; resolves to the function that turns it off. */
  async begin(f: Fault): Promise<() => Promise<void>> {
    this.onEvent(`fault on: ${describeFault(f)}`);
    switch (f.kind) {
      case "crash":
      case "power-loss": {
        if (this.down.has(f.store)) return async () => {};
        this.down.add(f.store);
        if (f.kind === "power-loss") {
          const report = await this.cluster.powerLoss(f.store, this.rng);
          this.onEvent(
            `power loss store ${f.store}: ${report.map((r) => `${r.file} kept ${r.kept}/${r.unsynced}`).join(", ")}`,
          );
        } else await this.crash(f.store);
        return async () => {
          if (!this.down.delete(f.store)) return;
          this.onEvent(`restart store ${f.store}`);
          await this.cluster.startStore(f.store);
        };
      }
      case "slow-disk": {
        this.slowDisks.add(f.store);
        this.applyDiskLatency();
        return async () => {
          this.slowDisks.delete(f.store);
          this.applyDiskLatency();
        };
      }
      case "failing-fsync": {
        // Every fsync of the store's disk fails: the store must stop as on a real disk error;
        // it is restarted (and recovers from what reached its disk) when the fault ends.
        if (this.failingSyncs.has(f.store)) return async () => {};
        this.failingSyncs.add(f.store);
        this.applyFailSync();
        return async () => {
          if (!this.failingSyncs.delete(f.store)) return;
          this.applyFailSync();
          await this.restartAfterFailedSync(f.store);
        };
      }
      case "clock-skew": {
        const clock = this.clockOf(f.store);
        clock.step(f.clockMs!);
        this.skews.set(f, clock);
        return async () => {
          if (this.skews.delete(f)) clock.step(-f.clockMs!);
        };
      }
      case "clock-jump":
        // A step (NTP, an operator) stays: nothing steps the clock back when the fault "ends".
        this.clockOf(f.store).step(f.clockMs!);
        return async () => {};
      case "pause": {
        // A stalled process: its timers hold, and what is sent to it meanwhile is lost.
        const clock = this.clockOf(f.store);
        if (clock.paused) return async () => {};
        clock.pause();
        this.paused.add(clock);
        const offNetwork = await this.filter(isolate(f.store));
        return async () => {
          await offNetwork();
          if (this.paused.delete(clock)) clock.resume();
        };
      }
      case "isolate":
        return this.filter(isolate(f.store));
      case "one-way":
        return this.filter((env) => !(env.from === f.store && env.to === f.other));
      case "drop":
        return this.filter(dropRate(0.3));
      case "delay":
        return this.filter(delay(5, 150));
      case "reorder-dup": {
        const offReorder = await this.filter(reorder(40));
        const offDup = await this.filter(duplicate(0.2));
        return async () => {
          await offReorder();
          await offDup();
        };
      }
    }
  }

  /** Every fault off, every store up. */
  async healAll(): Promise<void> {
    for (const remove of [...this.removers]) remove();
    this.removers.clear();
    this.slowDisks.clear();
    this.applyDiskLatency();
    for (const [f, clock] of this.skews) clock.step(-f.clockMs!);
    this.skews.clear();
    for (const clock of this.paused) clock.resume();
    this.paused.clear();
    const failedSyncs = [...this.failingSyncs].sort((a, b) => Number(a - b));
    this.failingSyncs.clear();
    this.applyFailSync();
    for (const id of failedSyncs) await this.restartAfterFailedSync(id);
    for (const id of [...this.down].sort((a, b) => Number(a - b))) {
      this.down.delete(id);
      this.onEvent(`heal: restart store ${id}`);
      await this.cluster.startStore(id);
    }
    this.onEvent("heal: all faults off");
  }

  /** A process crash: the page cache survives, the store is gone from the network at once. */
  private async crash(id: bigint): Promise<void> {
    const slot = this.cluster.slots.get(id)!;
    this.cluster.network.unregister(id);
    await slot.simDisk!.crash();
    await slot.store?.stop();
    slot.store = slot.kv = slot.raft = undefined;
  }

  private async filter(f: MessageFilter): Promise<() => Promise<void>> {
    const remove = this.cluster.network.addFilter(f);
    this.removers.add(remove);
    return async () => {
      if (!this.removers.delete(remove)) return;
      remove();
    };
  }

  /**
   * After a failing-fsync fault: a store that hit a failed sync must have stopped (a disk that
   * lost a write may not be written to as if it had not); it restarts from what its disk kept.
   * A store that is down for a crash fault is that fault's to restart.
   */
  private async restartAfterFailedSync(id: bigint): Promise<void> {
    if (this.down.has(id)) return;
    const slot = this.cluster.slots.get(id)!;
    const failedFiles = slot.simDisk!.filesWithFailedSync();
    if (failedFiles.length === 0) return; // no sync was attempted meanwhile
    if (!slot.store?.stopped) {
      throw new Error(
        `store ${id} kept running after an fsync of ${failedFiles.join(", ")} failed (it must stop as on a real disk error)`,
      );
    }
    this.onEvent(`restart store ${id} after its failed fsync`);
    await this.cluster.stopStore(id);
    await this.cluster.startStore(id);
  }

  private applyFailSync(): void {
    for (const id of this.cluster.storeIds)
      this.cluster.simDisk(id)!.faults.failSync = this.failingSyncs.has(id) ? () => true : undefined;
  }

  private applyDiskLatency(): void {
    for (const id of this.cluster.storeIds) {
      const disk = this.cluster.simDisk(id)!;
      disk.faults.writeLatencyMs = this.slowDisks.has(id) ? (w) => (w.sync ? 30 : 5) : undefined;
    }
  }
}
