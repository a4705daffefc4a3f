// A 3-store cluster of real processes over gRPC for the replica and stale read tests, and ways to
// talk to one chosen peer of a region directly (the client library would pick for itself).
import { KvClient, TinyKvRpc } from "../../src/client/index.js";
import type { Context } from "../../src/proto/kvrpcpb.js";
import type { Peer, Region } from "../../src/proto/metapb.js";
import { FAST_STORE_CONFIG, ProcessCluster } from "../harness/processes.js";
import { waitFor } from "../harness/wait.js";

/** Each leader proposes its resolved ts this often: stale reads at a ts this old find every replica ready. */
export const RESOLVED_TS_INTERVAL_MS = 200;

export interface ReplicaCluster {
  cluster: ProcessCluster;
  kv: KvClient;
  /** The region holding every key of the tests, with all 3 peers, and its leader then. */
  region: Region;
  leader: Peer;
  followers: Peer[];
  rpcOf(peer: Peer): TinyKvRpc;
  statusAddrOf(peer: Peer): string;
  close(): Promise<void>;
}

/** Starts tinyscheduler + 3 stores and waits until the one region has a peer on each and a leader. */
export async function startReplicaCluster(): Promise<ReplicaCluster> {
  const cluster = new ProcessCluster({ ...FAST_STORE_CONFIG, resolvedTsIntervalMs: RESOLVED_TS_INTERVAL_MS });
  const rpcs = new Map<string, TinyKvRpc>();
  let kv: KvClient | undefined;
  try {
    await cluster.startScheduler();
    for (const n of [1, 2, 3]) await cluster.addStore(n, { status: true });
    kv = await KvClient.connect({ scheduler: cluster.schedulerAddr, timeoutMs: 20_000 });
    await kv.put("warm-up", "1");
    const client = kv;
    const { region, leader } = await waitFor(
      async () => {
        const [r] = await client.getAllRegions();
        return r && r.region.peers.length === 3 && r.leader && r.leader.id !== 0n
          ? { region: r.region, leader: r.region.peers.find((p) => p.id === r.leader!.id)! }
          : undefined;
      },
      {
        timeoutMs: 30_000,
        get message() {
          return `the region never got 3 peers and a leader\n${cluster.logs()}`;
        },
      },
    );
    // A client whose cache holds the region from before its replicas were added would send
    // every "replica" read to the leader (the only peer it knows): start one that sees all three.
    kv.close();
    kv = await KvClient.connect({ scheduler: cluster.schedulerAddr, timeoutMs: 20_000 });
    const stores = await kv.getAllStores(true);
    const addrOf = (p: Peer) => stores.find((s) => s.id === p.storeId)!.address;
    const byAddr = new Map([...cluster.stores.values()].map((s) => [s.addr, s.statusAddr]));
    return {
      cluster,
      kv,
      region,
      leader,
      followers: region.peers.filter((p) => p.id !== leader.id),
      rpcOf(peer) {
        const addr = addrOf(peer);
        let rpc = rpcs.get(addr);
        if (!rpc) rpcs.set(addr, (rpc = new TinyKvRpc(addr, 3000)));
        return rpc;
      },
      statusAddrOf: (peer) => byAddr.get(addrOf(peer))!,
      async close() {
        for (const rpc of rpcs.values()) rpc.close();
        kv?.close();
        await cluster.shutdown();
      },
    };
  } catch (err) {
    kv?.close();
    await cluster.shutdown();
    throw err;
  }
}

/** The context of a request addressed to `peer` of `region`, with read flags. */
export function contextFor(region: Region, peer: Peer, flags: Pick<Context, "replicaRead" | "staleRead">): Context {
  return { regionId: region.id, regionEpoch: region.regionEpoch, peer, term: 0n, ...flags };
}

/** tinykv_store_replica_reads_total{served} of the store at `statusAddr`. */
export async function replicaReadsServed(
  statusAddr: string,
  served: "follower" | "stale" | "stale_not_ready",
): Promise<number> {
  const text = await (await fetch(`http://${statusAddr}/metrics`)).text();
  const line = text
    .split("\n")
    .find((l) => l.startsWith("tinykv_store_replica_reads_total{") && l.includes(`served="${served}"`));
  return line ? Number(line.split(" ").pop()) : 0;
}
