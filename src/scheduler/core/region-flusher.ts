import type { Region } from "../../proto/metapb.js";
import type { Logger } from "../../util/logger.js";
import type { Runtime, TimerHandle } from "../../util/runtime.js";
import type { MetaStorage } from "./meta-storage.js";
import type { RegionInfo } from "./region-info.js";

/**
 * The region metadata heartbeats changed, written to the meta storage in batches on a timer rather
 * than once per heartbeat. Not synced: heartbeats rebuild it anyway.
 */
export class RegionFlusher {
  private readonly dirtyRegions = new Map<bigint, Region>();
  private readonly deletedRegions = new Set<bigint>();
  private flushTimer: TimerHandle | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly storage: MetaStorage,
    private readonly runtime: Runtime,
    private readonly log: Logger,
  ) {}

  /** Flushes every `intervalMs` until stop(). */
  start(intervalMs: number): void {
    this.flushTimer = this.runtime.setInterval(() => void this.flush(), intervalMs);
  }

  /** Stops the timer and writes what is still unwritten. */
  async stop(): Promise<void> {
    this.runtime.clearInterval(this.flushTimer);
    await this.flush();
  }

  /** Records a region a heartbeat changed, and the regions its range replaced (to delete). */
  changed(region: RegionInfo, overlapped: RegionInfo[]): void {
    this.dirtyRegions.set(region.meta.id, region.meta);
    this.deletedRegions.delete(region.meta.id);
    for (const o of overlapped) {
      this.dirtyRegions.delete(o.meta.id);
      this.deletedRegions.add(o.meta.id);
    }
  }

  /** Writes changed region metadata; flushes run one after another. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.dirtyRegions.size === 0 && this.deletedRegions.size === 0) return;
      const puts = [...this.dirtyRegions.values()];
      const dels = [...this.deletedRegions];
      this.dirtyRegions.clear();
      this.deletedRegions.clear();
      try {
        await this.storage.saveRegions(puts, dels);
      } catch (err) {
        this.log.warn({ err }, "saving region metadata failed");
      }
    });
    return this.flushing;
  }
}
