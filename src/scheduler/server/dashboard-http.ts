/**
 * The scheduler's live dashboard: a page at `/` of its status address (static files, no build
 * step) and `/dashboard/data`, one JSON answer per poll with what the page draws — stores,
 * regions, operators and each store's request figures scraped from its /metrics.
 */
import { existsSync, readFileSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { dirname, join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { StoreMetricsSummary } from "../../util/prom-text.js";
import { parsePromText, summarizeStoreMetrics } from "../../util/prom-text.js";
import type { Store } from "../../proto/metapb.js";
import { StoreState } from "../../proto/metapb.js";
import { storeStatusAddr } from "../../util/http-status.js";
import { errorMessage } from "../../util/retry.js";
import { requestStatus } from "../../util/status-client.js";
import type { TlsConfig } from "../../util/tls.js";
import type { SchedulerCore } from "../core/core.js";

/** A store's /metrics can take this long before the page shows it as unreachable. */
const SCRAPE_TIMEOUT_MS = 1_000;
/** Several open pages polling share one scrape of the stores this recent. */
const SCRAPE_CACHE_MS = 500;
/** A store's /metrics is a few tens of KiB; anything far bigger is not one. */
const SCRAPE_MAX_BYTES = 4 << 20;

export interface StoreScrape {
  store_id: string;
  status_addr: string;
  /** Milliseconds since the epoch when the store answered (so the page can compute rates). */
  scraped_at_ms: number;
  error?: string;
  metrics?: StoreMetricsSummary;
}

/** Where the page's files are: beside this module in the source tree, also when run from dist. */
function findDashboardDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  // Run from dist/, the page's files are still in the source tree: the same path without dist/.
  const candidates = [join(here, "dashboard"), join(here.replace(`${sep}dist${sep}`, sep), "dashboard")];
  return candidates.find((d) => existsSync(join(d, "index.html")));
}

function findUplotDir(): string | undefined {
  try {
    return dirname(createRequire(import.meta.url).resolve("uplot"));
  } catch {
    // Without uPlot the page still draws stores, regions and operators; it says charts are missing.
    return undefined;
  }
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

export class Dashboard {
  private readonly files = new Map<string, string>();
  private lastScrape: { at: number; result: Promise<StoreScrape[]> } | undefined;

  constructor(
    private readonly core: SchedulerCore,
    /** The stores' status servers then speak HTTPS and want this scheduler's certificate. */
    private readonly tls?: TlsConfig,
  ) {
    const dir = findDashboardDir();
    const uplot = findUplotDir();
    const routes: [string, string | undefined][] = [
      ["/", dir && join(dir, "index.html")],
      ["/dashboard/app.js", dir && join(dir, "app.js")],
      ["/dashboard/app.css", dir && join(dir, "app.css")],
      ["/dashboard/uPlot.iife.min.js", uplot && join(uplot, "uPlot.iife.min.js")],
      ["/dashboard/uPlot.min.css", uplot && join(uplot, "uPlot.min.css")],
    ];
    for (const [path, file] of routes) if (file && existsSync(file)) this.files.set(path, file);
  }

  /** Serves a dashboard GET path; false when `path` is not one of the dashboard's. */
  serve(path: string, res: ServerResponse, sendJson: (code: number, body: unknown) => void): boolean {
    if (path === "/dashboard/data") {
      this.data().then(
        (body) => sendJson(200, body),
        (err: unknown) => sendJson(500, { error: errorMessage(err) }),
      );
      return true;
    }
    if (path === "/" && !this.files.has("/")) {
      sendJson(404, {
        error: "the dashboard's files are not installed beside the scheduler; the JSON status is at /status",
      });
      return true;
    }
    const file = this.files.get(path);
    if (!file) return false;
    const ext = file.slice(file.lastIndexOf("."));
    // Read per request, not cached: small files, and an edited page shows on reload.
    res.writeHead(200, {
      "content-type": CONTENT_TYPES[ext] ?? "application/octet-stream",
      "cache-control": "no-cache",
    });
    res.end(readFileSync(file));
    return true;
  }

  private async data(): Promise<unknown> {
    const core = this.core;
    const now = core.cluster.clock();
    return {
      cluster_id: core.clusterId.toString(),
      bootstrapped: core.isBootstrapped(),
      max_replicas: core.cluster.maxReplicas,
      stores: core.cluster.getStores().map((s) => ({ ...s.toJSON(now), down: core.cluster.isStoreDown(s) })),
      regions: core.cluster.regions.all().map((r) => ({
        id: r.meta.id.toString(),
        start_key: r.meta.startKey.toString("hex"),
        end_key: r.meta.endKey.toString("hex"),
        peers: r.meta.peers.map((p) => p.storeId.toString()),
        leader_store_id: r.leader ? r.leader.storeId.toString() : null,
        approximate_size_mib: r.approximateSize,
      })),
      operators: {
        running: core.oc.all().map((op) => op.toJSON()),
        recent: core.oc
          .recent()
          .slice(-30)
          .map((f) => ({ ...f.op.toJSON(), finished_at_ms: f.finishedAtMs })),
      },
      store_metrics: await this.scrapeStores(),
    };
  }

  private scrapeStores(): Promise<StoreScrape[]> {
    const now = this.core.cluster.clock();
    if (this.lastScrape && now - this.lastScrape.at < SCRAPE_CACHE_MS) return this.lastScrape.result;
    const stores = this.core.cluster.getStores().filter((s) => s.meta.state !== StoreState.Tombstone);
    const clock = this.core.cluster.clock;
    const result = Promise.all(stores.map((s) => scrapeStore(s.meta, clock, this.tls)));
    this.lastScrape = { at: now, result };
    return result;
  }
}

/**
 * A store's /metrics at the status address it registered; a store that registered none (a TinyKV
 * store, or an older tinykv-ts) is looked for at TiKV's default, its gRPC port + 20.
 */
async function scrapeStore(store: Store, clock: () => number, tls: TlsConfig | undefined): Promise<StoreScrape> {
  const storeId = store.id.toString();
  let statusAddr = "";
  try {
    statusAddr = storeStatusAddr(store);
    const res = await requestStatus(statusAddr, "/metrics", { timeoutMs: SCRAPE_TIMEOUT_MS, tls });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const text = res.text;
    if (text.length > SCRAPE_MAX_BYTES) throw new Error(`answer of ${text.length} bytes is too big for /metrics`);
    return {
      store_id: storeId,
      status_addr: statusAddr,
      scraped_at_ms: clock(),
      metrics: summarizeStoreMetrics(parsePromText(text)),
    };
  } catch (err) {
    return { store_id: storeId, status_addr: statusAddr, scraped_at_ms: clock(), error: errorMessage(err) };
  }
}
