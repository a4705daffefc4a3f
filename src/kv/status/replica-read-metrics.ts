// Who served the replica and stale reads a store answered (replica-reads.ts): the evidence that
// follower reads take load off the leader, and how often stale reads had to fall back to it.
import type { ReplicaReadCounters } from "../raftstore/index.js";
import type { Registry } from "../../util/metrics.js";
import { Counter } from "../../util/metrics.js";

export function watchReplicaReads(registry: Registry, counters: ReplicaReadCounters): void {
  new Counter({
    name: "tinykv_store_replica_reads_total",
    help: "Reads served by any peer: follower = a replica read a follower served after ReadIndex; stale = a stale read served from the safe ts; stale_not_ready = a stale read refused with DataIsNotReady",
    labelNames: ["served"],
    registers: [registry],
    collect() {
      // Read at scrape time from the store's plain counters: nothing on the read path.
      this.reset();
      this.inc({ served: "follower" }, counters.followerServed);
      this.inc({ served: "stale" }, counters.staleServed);
      this.inc({ served: "stale_not_ready" }, counters.staleNotReady);
    },
  });
}
