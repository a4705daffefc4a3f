import { statfs } from "node:fs/promises";
import type { SchedulerApi } from "../../scheduler/api.js";
import type { Peer as PeerMeta } from "../../proto/metapb.js";
import { AdminCmdType, RaftCmdRequest } from "../../proto/raft_cmdpb.js";
import type { RegionHeartbeatResponse } from "../../proto/schedulerpb.js";
import type { Logger } from "../../util/logger.js";
import type { Runtime, TimerHandle } from "../../util/runtime.js";
import { realRuntime } from "../../util/runtime.js";
import type { Peer } from "./peer.js";
import type { Store, StoreHooks } from "./store.js";

/**
 * The store's side of the scheduler conversation: region heartbeats from leaders (with pending
 * peers and approximate size), store heartbeats, split ids (AskSplit), and the operators the
 * scheduler sends back (add/remove peer, transfer leader), proposed as admin commands.
 */
/** Capacity and free space of the disk a store's data lives on, bytes. */
export type DiskUsage = () => Promise<{ capacity: bigint; available: bigint }>;

/** The file system's view of `path` (statfs). */
export function fsDiskUsage(path: string): DiskUsage {
  return async () => {
    const fs = await statfs(path);
    return { capacity: BigInt(fs.blocks) * BigInt(fs.bsize), available: BigInt(fs.bavail) * BigInt(fs.bsize) };
  };
}

export class SchedulerWorker {
  private store: Store | undefined;
  private storeTimer: TimerHandle | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly startedAt: number;
  private readonly diskUsage: DiskUsage;

  constructor(
    private readonly client: SchedulerApi,
    /** The store's data dir (its file system is measured), or how to measure the disk. */
    disk: string | DiskUsage,
    private readonly log: Logger,
    private readonly runtime: Runtime = realRuntime,
  ) {
    this.startedAt = Math.floor(runtime.now() / 1000);
    this.diskUsage = typeof disk === "string" ? fsDiskUsage(disk) : disk;
  }

  hooks(): StoreHooks {
    return {
      onRegionHeartbeat: (peer) => this.regionHeartbeat(peer),
      onSplitKey: (peer, key) => void this.askSplit(peer, key),
    };
  }

  start(store: Store, storeHeartbeatMs: number): void {
    this.store = store;
    this.unsubscribe = this.client.onRegionHeartbeatResponse((resp) => this.onOperator(resp));
    this.storeTimer = this.runtime.setInterval(() => void this.storeHeartbeat(), storeHeartbeatMs);
    void this.storeHeartbeat();
  }

  stop(): void {
    this.runtime.clearInterval(this.storeTimer);
    this.unsubscribe?.();
  }

  private regionHeartbeat(peer: Peer): void {
    if (!peer.isLeader() || !peer.storage.isInitialized()) return;
    const truncated = peer.storage.truncatedIndex;
    const pendingPeers: PeerMeta[] = [];
    for (const [id, pr] of peer.raw.progress()) {
      if (id === peer.meta.id || pr.match >= truncated) continue;
      const meta = peer.peerById(id);
      if (meta) pendingPeers.push(meta);
    }
    this.client.regionHeartbeat({
      region: peer.region,
      leader: peer.meta,
      pendingPeers,
      approximateSize: BigInt(peer.size.approximateSize ?? 0),
    });
  }

  private async storeHeartbeat(): Promise<void> {
    const store = this.store;
    if (!store) return;
    if (store.stopped) {
      // The store stopped without telling us (a crash): this worker's life ends with it.
      this.stop();
      return;
    }
    try {
      const { capacity, available } = await this.diskUsage();
      let used = 0;
      for (const p of store.peers.values()) used += p.size.approximateSize ?? 0;
      const snaps = store.snapshotCounts();
      await this.client.storeHeartbeat({
        sendingSnapCount: snaps.sending,
        receivingSnapCount: snaps.receiving,
        applyingSnapCount: snaps.applying,
        storeId: store.storeId,
        capacity,
        available,
        usedSize: BigInt(used),
        regionCount: store.peers.size,
        startTime: this.startedAt,
      });
    } catch (err) {
      this.log.warn({ err }, "store heartbeat failed; next one on schedule");
    }
  }

  private async askSplit(peer: Peer, splitKey: Buffer): Promise<void> {
    const store = this.store;
    if (!store) return;
    const region = peer.region;
    try {
      const { newRegionId, newPeerIds } = await this.client.askSplit(region);
      const resp = await store.proposeSplit(region.id, region.regionEpoch!, splitKey, newRegionId, newPeerIds);
      if (resp.header?.error)
        this.log.info({ region_id: String(region.id), error: resp.header.error.message }, "split not applied");
    } catch (err) {
      this.log.warn(
        { err, region_id: String(region.id) },
        "asking the scheduler for split ids failed; the split checker retries",
      );
    }
  }

  private onOperator(resp: RegionHeartbeatResponse): void {
    const store = this.store;
    if (!store || store.stopped || (!resp.changePeer && !resp.transferLeader)) return;
    const header = { regionId: resp.regionId, peer: resp.targetPeer, regionEpoch: resp.regionEpoch };
    const req = resp.changePeer
      ? RaftCmdRequest.fromPartial({
          header,
          adminRequest: {
            cmdType: AdminCmdType.ChangePeer,
            changePeer: { changeType: resp.changePeer.changeType, peer: resp.changePeer.peer },
          },
        })
      : RaftCmdRequest.fromPartial({
          header,
          adminRequest: { cmdType: AdminCmdType.TransferLeader, transferLeader: { peer: resp.transferLeader!.peer } },
        });
    store.propose(req).then(
      (r) => {
        if (r.header?.error)
          this.log.debug(
            { region_id: String(resp.regionId), error: r.header.error.message },
            "operator step not proposed",
          );
      },
      (err: unknown) => this.log.warn({ err, region_id: String(resp.regionId) }, "operator step failed"),
    );
  }
}
