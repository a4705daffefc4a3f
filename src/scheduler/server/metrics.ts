/**
 * The scheduler's Prometheus series: operators by kind and outcome as they end, and, read when
 * scraped, stores by state, regions, running operators and the TSO's last physical time.
 */
import { StoreState } from "../../proto/metapb.js";
import { OperatorStatus } from "../../proto/schedulerpb.js";
import { Counter, Gauge, expositionText, Registry } from "../../util/metrics.js";
import type { SchedulerCore } from "../core/core.js";
import { kindString } from "../schedule/operator.js";

export class SchedulerMetrics {
  readonly registry: Registry = new Registry();
  private readonly unsubscribe: () => void;

  constructor(core: SchedulerCore) {
    const registers = [this.registry];
    const operators = new Counter({
      name: "tinykv_scheduler_operators_finished_total",
      help: "Operators that ended, by kind (leader, region, ...) and outcome (SUCCESS, TIMEOUT, CANCEL, REPLACE)",
      labelNames: ["kind", "outcome"],
      registers,
    });
    this.unsubscribe = core.oc.onFinish((op, status) =>
      operators.inc({ kind: kindString(op.kind), outcome: OperatorStatus[status] ?? String(status) }),
    );
    const served = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          // The core counts; the counter shows its total (reset + inc keeps it a counter).
          this.reset();
          this.inc(read());
        },
      });
    served(
      "tinykv_scheduler_region_heartbeats_total",
      "Region heartbeats received",
      () => core.served.regionHeartbeats,
    );
    served("tinykv_scheduler_store_heartbeats_total", "Store heartbeats accepted", () => core.served.storeHeartbeats);
    served(
      "tinykv_scheduler_tso_requests_total",
      "TSO requests served (one per batch a client sends)",
      () => core.served.tsoRequests,
    );
    served("tinykv_scheduler_tso_timestamps_total", "Timestamps handed out", () => core.served.timestamps);
    new Gauge({
      name: "tinykv_scheduler_operators_running",
      help: "Operators in flight",
      registers,
      collect() {
        this.set(core.oc.all().length);
      },
    });
    new Gauge({
      name: "tinykv_scheduler_stores",
      help: "Stores the scheduler knows, by state (Up, Offline, Tombstone) and whether heartbeats stopped (down)",
      labelNames: ["state", "down"],
      registers,
      collect() {
        this.reset();
        const counts = new Map<string, number>();
        for (const s of core.cluster.getStores()) {
          const key = `${StoreState[s.meta.state] ?? s.meta.state}|${core.cluster.isStoreDown(s)}`;
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
        for (const [key, n] of counts) {
          const [state, down] = key.split("|");
          this.set({ state: state!, down: down! }, n);
        }
      },
    });
    new Gauge({
      name: "tinykv_scheduler_regions",
      help: "Regions the scheduler knows",
      registers,
      collect() {
        this.set(core.cluster.regions.size);
      },
    });
    new Gauge({
      name: "tinykv_scheduler_tso_physical_milliseconds",
      help: "Physical part of the last timestamp the TSO issued (ms since the epoch)",
      registers,
      collect() {
        this.set(core.tso.last().physical);
      },
    });
  }

  text(): Promise<string> {
    return expositionText(this.registry);
  }

  close(): void {
    this.unsubscribe();
  }
}
