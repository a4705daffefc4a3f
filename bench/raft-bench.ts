// Micro-benchmark of the Raft library (not a test): a 3-node in-memory cluster commits and
// applies N small proposals; messages are handed over directly (CODEC=1 encodes and decodes each
// one as a transport would). Prints committed entries per second.
//
//   npx tsx bench/raft-bench.ts            (N=1000000, BATCH=1000, 16-byte payloads)
//   N=200000 BATCH=100 CODEC=1 npx tsx bench/raft-bench.ts
import { Message, MemoryStorage, RawNode } from "../src/raft/index.js";

const N = Number(process.env.N ?? 1_000_000);
const BATCH = Number(process.env.BATCH ?? 1000);
const CODEC = process.env.CODEC === "1";
const COMPACT_EVERY = 100_000n;

interface BenchNode {
  id: bigint;
  storage: MemoryStorage;
  rn: RawNode;
  applied: bigint;
  appliedEntries: number;
}

const peers = [1n, 2n, 3n];
const nodes = new Map<bigint, BenchNode>();
for (const id of peers) {
  const storage = new MemoryStorage();
  const rn = new RawNode({ id, peers, electionTick: 10, heartbeatTick: 1, storage });
  nodes.set(id, { id, storage, rn, applied: 0n, appliedEntries: 0 });
}

let queue: Message[] = [];

/** Runs every node's Ready loop and delivers messages until the cluster is quiet. */
function pump(): void {
  for (;;) {
    let busy = false;
    for (const n of nodes.values()) {
      if (!n.rn.hasReady()) continue;
      busy = true;
      const rd = n.rn.ready();
      n.storage.append(rd.entries);
      if (rd.hardState) n.storage.setHardState(rd.hardState);
      for (const m of rd.messages) queue.push(CODEC ? Message.decode(Message.encode(m).finish()) : m);
      const ce = rd.committedEntries;
      if (ce.length > 0) {
        for (const e of ce) if (e.data.length > 0) n.appliedEntries++;
        n.applied = ce[ce.length - 1]!.index;
      }
      n.rn.advance(rd);
      if (n.applied - (n.storage.firstIndex() - 1n) > COMPACT_EVERY) {
        n.storage.createSnapshot(n.applied, undefined, Buffer.alloc(0));
        n.storage.compact(n.applied);
      }
    }
    if (queue.length > 0) {
      busy = true;
      const q = queue;
      queue = [];
      for (const m of q) nodes.get(m.to)!.rn.step(m);
    }
    if (!busy) return;
  }
}

const leader = nodes.get(1n)!;
leader.rn.campaign();
pump();
if (!leader.rn.isLeader()) throw new Error("node 1 did not become leader");

const payload = Buffer.from("0123456789abcdef");
const t0 = process.hrtime.bigint();
let proposed = 0;
while ([...nodes.values()].some((n) => n.appliedEntries < N)) {
  for (let i = 0; i < BATCH && proposed < N; i++, proposed++) leader.rn.propose(payload);
  pump();
  for (const n of nodes.values()) n.rn.tick(); // heartbeats keep flowing, as in a real cluster
}
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
const rate = Math.round(N / secs);
console.log(
  `raft-bench: ${N} proposals (${payload.length} B, batch ${BATCH}${CODEC ? ", codec" : ""}) committed and applied on 3 nodes in ${secs.toFixed(2)} s = ${rate.toLocaleString("en-US")} entries/s`,
);
