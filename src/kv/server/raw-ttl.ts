import type { CfName } from "../engine/index.js";
import { CLIENT_CFS, parseClientCf } from "../engine/index.js";
import type { Store } from "../raftstore/store.js";
import type { RawKeyspace } from "../storage/index.js";
import { RegionError } from "../storage/index.js";
import type { Context, RawGetKeyTTLRequest } from "../../proto/kvrpcpb.js";
import { RawGetKeyTTLResponse } from "../../proto/kvrpcpb.js";
import { decodeExpiry } from "../raftstore/conditional-write.js";
import type { Logger } from "../../util/logger.js";
import type { Runtime, TimerHandle } from "../../util/runtime.js";
import { rawFailure } from "./raw.js";
import { checkKey } from "./validate.js";

/** RawGetKeyTTL (TiKV's rpc): the seconds a raw key has left, 0 when it never expires. */
export class RawTtlHandlers {
  constructor(private readonly keyspace: RawKeyspace) {}

  async rawGetKeyTtl(req: RawGetKeyTTLRequest): Promise<RawGetKeyTTLResponse> {
    try {
      const cf = parseClientCf(req.cf);
      checkKey(req.key);
      const reader = await this.keyspace.reader(req.context);
      try {
        const found = await reader.getWithExpiry(cf, req.key);
        if (!found) return RawGetKeyTTLResponse.create({ notFound: true });
        if (found.expiresAtMs === undefined) return RawGetKeyTTLResponse.create({ ttl: 0n });
        // Rounded up: a key that is still there never reports 0 (which means "no ttl").
        const left = BigInt(Math.ceil((found.expiresAtMs - reader.nowMs) / 1000));
        return RawGetKeyTTLResponse.create({ ttl: left > 0n ? left : 1n });
      } finally {
        await reader.close();
      }
    } catch (err) {
      return RawGetKeyTTLResponse.create(rawFailure(err));
    }
  }
}

/** Where the sweep looks: one context per region this node leads (standalone: one, undefined). */
export type SweepTargets = () => Array<Context | undefined>;

/** The regions `store` leads now, as request contexts. */
export function ledRegions(store: Store): SweepTargets {
  return () =>
    [...store.peers.values()]
      .filter((p) => p.isLeader() && p.storage.isInitialized() && !p.destroyed)
      .map((p) => ({ regionId: p.regionId, regionEpoch: p.region.regionEpoch, peer: p.meta, term: 0n }));
}

/** How far the sweep looks at expiries per region and CF in one round, as a multiple of its batch. */
const SCAN_BUDGET_FACTOR = 8;

/**
 * Removes expired raw keys in the background (reads hide them at once; this reclaims the space).
 * Each round, for each region the node leads, it walks the stored expiries from where it left
 * off, and removes up to `batch` keys whose expiry has passed, each by a conditional delete that
 * applies only if the key's expiry is still the one it read: a put since then is never lost.
 */
export class TtlSweeper {
  private timer: TimerHandle | undefined;
  private running: Promise<number> | undefined;
  /** Per region and CF, the key the next round resumes at (walks wrap around to the start). */
  private readonly resumeAt = new Map<string, Buffer>();
  /** Keys removed since start (tests and metrics read it). */
  removed = 0;

  constructor(
    private readonly opts: {
      keyspace: RawKeyspace;
      targets: SweepTargets;
      runtime: Pick<Runtime, "setInterval" | "clearInterval">;
      intervalMs: number;
      batch: number;
      log: Logger;
    },
  ) {}

  start(): void {
    this.timer ??= this.opts.runtime.setInterval(() => {
      if (!this.running) this.running = this.sweepOnce().finally(() => (this.running = undefined));
    }, this.opts.intervalMs);
  }

  async stop(): Promise<void> {
    this.opts.runtime.clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => 0); // its failure was logged by sweepOnce
  }

  /** One round over every led region; the number of keys it removed. */
  async sweepOnce(): Promise<number> {
    let left = this.opts.batch;
    for (const ctx of this.opts.targets()) {
      for (const cf of CLIENT_CFS) {
        if (left <= 0) return this.opts.batch;
        try {
          left -= await this.sweepRegion(ctx, cf, left);
        } catch (err) {
          // Leadership moved or the region changed under the round: the next leader sweeps it.
          if (err instanceof RegionError) break;
          this.opts.log.warn({ err, region_id: ctx?.regionId, cf }, "raw ttl sweep failed");
          break;
        }
      }
    }
    return this.opts.batch - left;
  }

  private async sweepRegion(ctx: Context | undefined, cf: CfName, limit: number): Promise<number> {
    const slot = `${ctx?.regionId ?? 0n}/${cf}`;
    const expired: Array<{ key: Buffer; expiry: Buffer }> = [];
    const reader = await this.opts.keyspace.reader(ctx);
    const cursor = reader.iterExpiries(cf);
    try {
      await cursor.seek(this.resumeAt.get(slot) ?? Buffer.alloc(0));
      let budget = limit * SCAN_BUDGET_FACTOR;
      while (cursor.valid && budget-- > 0 && expired.length < limit) {
        const at = decodeExpiry(cursor.value);
        if (at !== undefined && at <= reader.nowMs) expired.push({ key: cursor.key, expiry: cursor.value });
        await cursor.next();
      }
      if (cursor.valid) this.resumeAt.set(slot, cursor.key);
      else this.resumeAt.delete(slot);
    } finally {
      await cursor.close();
      await reader.close();
    }
    let removed = 0;
    for (const { key, expiry } of expired) if (await this.opts.keyspace.removeExpired(ctx, cf, key, expiry)) removed++;
    this.removed += removed;
    return removed;
  }
}
