/**
 * A scheduler for client tests that need no process: it routes every key to one region and
 * answers store addresses and timestamps; every other call rejects, naming itself. And a store
 * connection that answers only the rpcs a test scripts.
 */
import type { KvConnection } from "../../src/client/kv-connection.js";
import type { Region } from "../../src/proto/metapb.js";
import type { SchedulerApi } from "../../src/scheduler/api.js";

/** Region 1 over the whole key space, one peer per store (peer 10 + store id), epoch 1/1. */
export function wholeRegion(storeIds: bigint[]): Region {
  return {
    id: 1n,
    startKey: Buffer.alloc(0),
    endKey: Buffer.alloc(0),
    regionEpoch: { confVer: 1n, version: 1n },
    peers: storeIds.map((storeId) => ({ id: 10n + storeId, storeId })),
  };
}

export function oneRegionScheduler(region: Region, storeAddress: (storeId: bigint) => string): SchedulerApi {
  const unused = (name: string) => () => Promise.reject(new Error(`fake scheduler: ${name} is not used by this test`));
  let ts = BigInt(Date.now()) << 18n;
  return {
    clusterId: 1n,
    leaderAddr: "fake",
    getRegion: async () => ({ region, leader: region.peers[0] }),
    getStore: async (id: bigint) => ({ store: { id, address: storeAddress(id), state: 0, statusAddress: "" } }),
    tso: async () => ++ts,
    allocId: unused("allocId"),
    bootstrap: unused("bootstrap"),
    isBootstrapped: unused("isBootstrapped"),
    putStore: unused("putStore"),
    getAllStores: unused("getAllStores"),
    storeHeartbeat: unused("storeHeartbeat"),
    getPrevRegion: unused("getPrevRegion"),
    getRegionById: unused("getRegionById"),
    scanRegions: unused("scanRegions"),
    askSplit: unused("askSplit"),
    getClusterConfig: unused("getClusterConfig"),
    putClusterConfig: unused("putClusterConfig"),
    getGcSafePoint: unused("getGcSafePoint"),
    updateGcSafePoint: unused("updateGcSafePoint"),
    getOperator: unused("getOperator"),
    regionHeartbeat: () => false,
    onRegionHeartbeatResponse: () => () => undefined,
    close: () => undefined,
  };
}

type Rpcs = Omit<KvConnection, "addr" | "close">;
const RPC_NAMES: (keyof Rpcs)[] = [
  "rawGet",
  "rawPut",
  "rawDelete",
  "rawScan",
  "kvGet",
  "kvScan",
  "kvPrewrite",
  "kvCommit",
  "kvCheckTxnStatus",
  "kvBatchRollback",
  "kvResolveLock",
  "kvTxnHeartBeat",
  "rawBatchGet",
  "rawBatchPut",
  "rawBatchDelete",
  "rawDeleteRange",
];

/** A connection to store `addr` serving `rpcs`; every other rpc rejects, naming itself. */
export function fakeConnection(addr: string, rpcs: Partial<Rpcs>): KvConnection {
  const conn: Record<string, unknown> = { addr, close: () => undefined };
  for (const name of RPC_NAMES)
    conn[name] =
      rpcs[name] ?? (() => Promise.reject(new Error(`fake store ${addr}: ${name} is not used by this test`)));
  return conn as unknown as KvConnection;
}
