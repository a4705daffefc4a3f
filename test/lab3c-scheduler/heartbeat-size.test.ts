// A region's size survives a heartbeat that does not know it (a new leader that has not measured yet).
import { describe, expect, it } from "vitest";
import { Peer, Region, Store } from "../../src/proto/metapb.js";
import { RegionHeartbeatRequest } from "../../src/proto/schedulerpb.js";
import { SchedulerCore } from "../../src/scheduler/core/core.js";
import { MemoryMetaKV } from "../../src/scheduler/core/meta-kv.js";

describe("region heartbeat sizes", () => {
  it("a heartbeat reporting size 0 keeps the region's last known size; a real size replaces it", async () => {
    const core = await SchedulerCore.open(new MemoryMetaKV());
    try {
      await core.bootstrap(Store.create({ id: 1n, address: "127.0.0.1:20401" }));
      await core.putStore(Store.create({ id: 2n, address: "127.0.0.1:20402" }));
      const peers = [Peer.create({ id: 10n, storeId: 1n }), Peer.create({ id: 11n, storeId: 2n })];
      const region = Region.create({
        id: 5n,
        startKey: Buffer.alloc(0),
        endKey: Buffer.alloc(0),
        regionEpoch: { version: 1n, confVer: 2n },
        peers,
      });
      const beat = (leader: Peer, bytes: bigint) =>
        core.handleRegionHeartbeat(
          RegionHeartbeatRequest.create({
            header: { clusterId: core.clusterId },
            region,
            leader,
            approximateSize: bytes,
          }),
        );
      beat(peers[0]!, 8n << 20n);
      expect(core.cluster.getStore(2n)!.regionSize).toBe(8);
      // The leadership moves to store 2, whose peer has not run a size check yet.
      beat(peers[1]!, 0n);
      expect(core.getRegionById(5n)!.approximateSize).toBe(8);
      expect(core.cluster.getStore(2n)!.leaderSize, "store 2 now leads 8 MiB, not an empty region").toBe(8);
      beat(peers[1]!, 3n << 20n);
      expect(core.getRegionById(5n)!.approximateSize).toBe(3);
    } finally {
      await core.close();
    }
  });
});
