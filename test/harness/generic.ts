import { expect } from "vitest";
import { ConfChangeType } from "../../src/raft/eraftpb.js";
import { AdminCmdType, RaftCmdRequest } from "../../src/proto/raft_cmdpb.js";
import { dropRate, partition, reorder } from "../../src/kv/transport/index.js";
import { TestCluster } from "./cluster.js";
import { seededRng, testSeed } from "./rng.js";
import { waitFor } from "./wait.js";

export interface GenericOptions {
  part: string;
  clients: number;
  unreliable?: boolean;
  crash?: boolean;
  partitions?: boolean;
  /** Compact the raft log past this many entries; the log must stay within 2x. */
  maxRaftLog?: number;
  confChange?: boolean;
  split?: boolean;
  stores?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ITERATIONS = Number(process.env.GENERIC_ITERATIONS ?? 2);
const RUN_MS = Number(process.env.GENERIC_RUN_MS ?? 2000);

/**
 * TinyKV's GenericTest: clients append to their own keys and check their scans see exactly
 * their history, while the harness injects unreliability, partitions, crashes, conf changes
 * and a small raft log. At the end every acknowledged append appears exactly once, in order.
 */
export async function genericTest(opts: GenericOptions): Promise<void> {
  const seed = testSeed();
  const rng = seededRng(seed);
  const tag = `[${opts.part} seed=${seed}] (replay with SEED=${seed})`;
  // Long chaos runs (make chaos) print every seed up front, not only on failure.
  if (process.env.GENERIC_ITERATIONS) console.log(`GenericTest ${opts.part} clients=${opts.clients} seed=${seed}`);
  const config: Record<string, number> = {};
  if (opts.maxRaftLog) config.raftLogGcCountLimit = opts.maxRaftLog;
  if (opts.split) Object.assign(config, { regionMaxSize: 300, regionSplitSize: 200 });
  const cluster = new TestCluster({ stores: opts.stores ?? 5, config, seed });
  const electionMs = cluster.config.raftBaseTickMs * cluster.config.raftElectionTicks;
  let nextPeerId = 1000n;
  try {
    await cluster.start();
    for (let iter = 0; iter < ITERATIONS; iter++) {
      let running = true;
      const counts: number[] = new Array(opts.clients).fill(0);
      const clients = Array.from({ length: opts.clients }, (_, cli) =>
        (async () => {
          let last = "";
          let j = 0;
          while (running) {
            const key = `${cli} ${String(j).padStart(8, "0")}`;
            if (rng() < 0.5) {
              const value = `x ${cli} ${j} y`;
              await cluster.put(key, value);
              last += value;
              j++;
              counts[cli] = j;
            } else {
              const rows = await cluster.scan(`${cli} 00000000`, key);
              const got = rows.map((r) => r.value.toString()).join("");
              if (got !== last) {
                const keys = rows.slice(0, 4).map((r) => r.key.toString());
                throw new Error(
                  `${tag} client ${cli}: scan [${cli} 00000000, ${key}) saw ${JSON.stringify(got.slice(-80))}, expected ${JSON.stringify(last.slice(-80))}; first keys ${JSON.stringify(keys)}`,
                );
              }
            }
          }
        })(),
      );
      const chaos = (async () => {
        if (!opts.unreliable && !opts.partitions) return;
        await sleep(100);
        if (opts.unreliable) {
          cluster.network.addFilter(dropRate(0.1));
          cluster.network.addFilter(reorder(5));
        }
        while (running) {
          if (opts.partitions) {
            cluster.network.clearFilters();
            if (opts.unreliable) {
              cluster.network.addFilter(dropRate(0.1));
              cluster.network.addFilter(reorder(5));
            }
            const a: bigint[] = [];
            const b: bigint[] = [];
            for (const id of cluster.storeIds) (rng() < 0.5 ? a : b).push(id);
            cluster.network.addFilter(partition(a, b));
          }
          await sleep(electionMs + rng() * 200);
        }
      })();
      const confChanger = (async () => {
        if (!opts.confChange) return;
        await sleep(100);
        while (running) {
          const region = cluster.regionFor(Buffer.alloc(0))!;
          const storeId = cluster.storeIds[Math.floor(rng() * cluster.storeIds.length)]!;
          const existing = region.peers.find((p) => p.storeId === storeId);
          if (existing && region.peers.length > 1)
            await changePeer(cluster, region.id, ConfChangeType.RemoveNode, existing);
          else if (!existing)
            await changePeer(cluster, region.id, ConfChangeType.AddNode, { id: nextPeerId++, storeId });
          await sleep(rng() * 200);
        }
      })();
      await sleep(RUN_MS);
      running = false;
      await chaos;
      // Heal before waiting for the conf changer: a change in flight may need the whole network.
      cluster.network.clearFilters();
      await confChanger;
      await sleep(electionMs);
      await Promise.all(clients);

      if (opts.crash) {
        for (const id of cluster.storeIds) await cluster.stopStore(id);
        await sleep(electionMs);
        for (const id of cluster.storeIds) await cluster.startStore(id);
      }

      for (let cli = 0; cli < opts.clients; cli++) {
        const rows = await cluster.scan(`${cli} `, `${cli} 99999999`);
        const values = rows.map((r) => r.value.toString());
        expect(values.length, `${tag} client ${cli}: ${values.length} values, ${counts[cli]} acknowledged`).toBe(
          counts[cli],
        );
        for (const [j, v] of values.entries()) expect(v, `${tag} client ${cli}: position ${j}`).toBe(`x ${cli} ${j} y`);
        await Promise.all(rows.map((r) => cluster.delete(r.key)));
      }

      if (opts.maxRaftLog) {
        await sleep(500);
        for (const id of cluster.storeIds) {
          for (const peer of cluster.store(id)?.peers.values() ?? []) {
            const st = peer.storage;
            const inLog = st.appliedIndex - st.truncatedIndex;
            expect(
              inLog <= BigInt(2 * opts.maxRaftLog),
              `${tag} store ${id} region ${peer.regionId}: ${inLog} entries in the log: logs were not trimmed`,
            ).toBe(true);
          }
        }
      }
    }
    if (opts.split) {
      const region = cluster.regionFor(Buffer.alloc(0))!;
      expect(region.endKey.length > 0, `${tag} the region holding "" was never split`).toBe(true);
    }
  } finally {
    await cluster.shutdown();
  }
}

/** Proposes a conf change on the region's leader until the leader's region reflects it. */
export async function changePeer(
  cluster: TestCluster,
  regionId: bigint,
  type: ConfChangeType,
  peer: { id: bigint; storeId: bigint },
): Promise<void> {
  const done = () => {
    const leader = cluster.leaderOf(regionId);
    const region = leader ? cluster.store(leader)?.peers.get(regionId)?.region : undefined;
    if (!region) return false;
    const has = region.peers.some((p) => p.id === peer.id);
    return type === ConfChangeType.AddNode ? has : !has;
  };
  await waitFor(
    async () => {
      if (done()) return true;
      const leader = cluster.leaderOf(regionId);
      const store = leader ? cluster.store(leader) : undefined;
      const p = store?.peers.get(regionId);
      if (!store || !p) return false;
      await store.propose(
        RaftCmdRequest.fromPartial({
          header: { regionId, peer: p.meta, regionEpoch: p.region.regionEpoch },
          adminRequest: { cmdType: AdminCmdType.ChangePeer, changePeer: { changeType: type, peer } },
        }),
      );
      return done();
    },
    {
      timeoutMs: 20_000,
      intervalMs: 50,
      get message() {
        return `conf change ${ConfChangeType[type]} of peer ${peer.id} on store ${peer.storeId} in region ${regionId} never took effect\n${cluster.dump()}`;
      },
    },
  );
}

/** Moves a region's leadership to a store, retrying until it took effect. */
export async function transferLeader(cluster: TestCluster, regionId: bigint, toStore: bigint): Promise<void> {
  await waitFor(
    async () => {
      if (cluster.leaderOf(regionId) === toStore) return true;
      const leader = cluster.leaderOf(regionId);
      const p = leader ? cluster.store(leader)?.peers.get(regionId) : undefined;
      const target = p?.region.peers.find((x) => x.storeId === toStore);
      if (!p || !target) return false;
      const resp = await cluster.store(leader!)!.propose(
        RaftCmdRequest.fromPartial({
          header: { regionId, peer: p.meta, regionEpoch: p.region.regionEpoch },
          adminRequest: { cmdType: AdminCmdType.TransferLeader, transferLeader: { peer: target } },
        }),
      );
      if (resp.header?.error && !resp.header.error.notLeader)
        throw new Error(`transfer leader of region ${regionId}: ${resp.header.error.message}`);
      return false;
    },
    { timeoutMs: 10_000, intervalMs: 100, message: `leadership of region ${regionId} never moved to store ${toStore}` },
  );
}
