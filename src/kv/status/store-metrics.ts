/**
 * A store's Prometheus series: its gRPC requests (by method and outcome, with latency) and, read
 * when scraped, its regions, leaders and snapshots in flight. Each store has its own registry.
 */
import { Counter, Gauge, Histogram, LATENCY_BUCKETS_SECONDS, expositionText, Registry } from "../../util/metrics.js";

/** What the gauges read from the store at scrape time (nothing on the hot path). */
export interface StoreGaugeSource {
  regionCount(): number;
  leaderCount(): number;
  /** Followers of this store's leaders too far behind to catch up from the log (they need a snapshot). */
  pendingPeerCount(): number;
  snapshotCounts(): { sending: number; receiving: number; applying: number };
}

/**
 * How a request ended, as a client would see it: answered, a region error (retry elsewhere), a
 * transaction's KeyError, a raw request's error string (bad input), or a gRPC error status.
 */
export type RequestOutcome = "ok" | "region_error" | "key_error" | "error" | "failed";

export class StoreMetrics {
  readonly registry: Registry;
  private readonly requests: Counter<"method" | "outcome">;
  private readonly duration: Histogram<"method">;

  constructor(opts: { storeId?: bigint; registry?: Registry }) {
    this.registry = opts.registry ?? new Registry();
    if (opts.storeId !== undefined) this.registry.setDefaultLabels({ store_id: opts.storeId.toString() });
    const registers = [this.registry];
    this.requests = new Counter({
      name: "tinykv_grpc_requests_total",
      help: "TinyKv gRPC requests served, by method and outcome (ok, region_error, key_error, error, failed)",
      labelNames: ["method", "outcome"],
      registers,
    });
    this.duration = new Histogram({
      name: "tinykv_grpc_request_duration_seconds",
      help: "Time from a TinyKv request's arrival to its answer, by method",
      labelNames: ["method"],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    });
  }

  /** The gauges read from a running store at scrape time. */
  watchStore(source: StoreGaugeSource): void {
    const registers = [this.registry];
    new Gauge({
      name: "tinykv_store_regions",
      help: "Regions this store holds data of (initialized peers)",
      registers,
      collect() {
        this.set(source.regionCount());
      },
    });
    new Gauge({
      name: "tinykv_store_leaders",
      help: "Regions whose leader is on this store",
      registers,
      collect() {
        this.set(source.leaderCount());
      },
    });
    new Gauge({
      name: "tinykv_store_pending_peers",
      help: "Followers of the regions this store leads whose log match is below the leader's truncated index (as in region heartbeats)",
      registers,
      collect() {
        this.set(source.pendingPeerCount());
      },
    });
    new Gauge({
      name: "tinykv_store_snapshots",
      help: "Snapshots in flight on this store, by state (sending, receiving, applying)",
      labelNames: ["state"],
      registers,
      collect() {
        const c = source.snapshotCounts();
        this.set({ state: "sending" }, c.sending);
        this.set({ state: "receiving" }, c.receiving);
        this.set({ state: "applying" }, c.applying);
      },
    });
  }

  /** Starts timing one request; call the result with its outcome when it is answered. */
  startRequest(method: string): (outcome: RequestOutcome) => void {
    const series = this.seriesOf(method);
    const end = series.duration.startTimer();
    return (outcome) => {
      end();
      series.outcome(outcome).inc();
    };
  }

  /** Each method's label children, bound once: a request does no label hashing. */
  private readonly byMethod = new Map<
    string,
    {
      duration: ReturnType<Histogram<"method">["labels"]>;
      outcome: (o: RequestOutcome) => ReturnType<Counter<"method" | "outcome">["labels"]>;
    }
  >();

  private seriesOf(method: string) {
    let series = this.byMethod.get(method);
    if (!series) {
      const outcomes = new Map<RequestOutcome, ReturnType<Counter<"method" | "outcome">["labels"]>>();
      series = {
        duration: this.duration.labels(method),
        outcome: (o) => {
          let child = outcomes.get(o);
          if (!child) {
            child = this.requests.labels(method, o);
            outcomes.set(o, child);
          }
          return child;
        },
      };
      this.byMethod.set(method, series);
    }
    return series;
  }

  text(): Promise<string> {
    return expositionText(this.registry);
  }
}
