import type { ServerDuplexStream } from "@grpc/grpc-js";
import type { RegionHeartbeatRequest } from "../../proto/schedulerpb.js";
import { RegionHeartbeatResponse } from "../../proto/schedulerpb.js";
import type { Logger } from "../../util/logger.js";
import type { Runtime, TimerHandle } from "../../util/runtime.js";

export type HeartbeatStream = ServerDuplexStream<RegionHeartbeatRequest, RegionHeartbeatResponse>;

/** How often a store's stream binding may move to another stream, and the keep-alive period (TinyKV: 1 min). */
export const REBIND_INTERVAL_MS = 60_000;

/**
 * The outbound side of region heartbeats: one bound stream per store. Operator commands go to the
 * stream of the region leader's store (`target_peer.store_id`); with no bound stream they are dropped
 * and re-sent on the region's next heartbeat.
 */
export class HeartbeatStreams {
  private readonly byStore = new Map<bigint, { stream: HeartbeatStream; boundAtMs: number }>();
  private keepAlive: TimerHandle | undefined;

  constructor(
    private readonly clusterId: bigint,
    private readonly clock: () => number,
    private readonly runtime: Runtime,
    private readonly log: Logger,
  ) {}

  /** Binds `stream` for `storeId` if nothing is bound, or the binding is older than the rebind interval. */
  bind(storeId: bigint, stream: HeartbeatStream): void {
    const cur = this.byStore.get(storeId);
    const now = this.clock();
    if (cur?.stream === stream) return;
    if (!cur || now - cur.boundAtMs >= REBIND_INTERVAL_MS || cur.stream.destroyed) {
      this.byStore.set(storeId, { stream, boundAtMs: now });
      this.log.debug({ store_id: storeId.toString() }, "region heartbeat stream bound");
    }
  }

  /** Forgets every binding of a closed stream. */
  unbind(stream: HeartbeatStream): void {
    for (const [id, b] of this.byStore) if (b.stream === stream) this.byStore.delete(id);
  }

  send(cmd: RegionHeartbeatResponse): boolean {
    const storeId = cmd.targetPeer?.storeId;
    const b = storeId === undefined ? undefined : this.byStore.get(storeId);
    if (!b || b.stream.destroyed) {
      this.log.debug(
        { region_id: cmd.regionId.toString(), store_id: storeId?.toString() },
        "no heartbeat stream for command; dropped",
      );
      return false;
    }
    b.stream.write(RegionHeartbeatResponse.create({ ...cmd, header: { clusterId: this.clusterId } }));
    return true;
  }

  startKeepAlive(): void {
    // Cleared by closeAll(), which SchedulerServer.stop() calls, so it never holds the process open.
    this.keepAlive = this.runtime.setInterval(() => {
      for (const b of this.byStore.values()) {
        if (!b.stream.destroyed)
          b.stream.write(RegionHeartbeatResponse.create({ header: { clusterId: this.clusterId } }));
      }
    }, REBIND_INTERVAL_MS);
  }

  closeAll(): void {
    this.runtime.clearInterval(this.keepAlive);
    for (const b of this.byStore.values()) if (!b.stream.destroyed) b.stream.end();
    this.byStore.clear();
  }
}
