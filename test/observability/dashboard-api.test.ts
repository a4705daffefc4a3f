/**
 * What the dashboard and tinykv-ctl read, without a browser: the scheduler serves the page at `/`
 * and its JSON status at /status, /dashboard/data carries each store's figures scraped from its
 * /metrics, and `tinykv-ctl metrics` / `operators` print them for a person.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { histogramQuantile, parsePromText, summarizeStoreMetrics } from "../../src/util/prom-text.js";
import { MetricsTargetError, resolveStatusAddr } from "../../src/cli/ctl-metrics.js";
import { ctlRun } from "../harness/ctl.js";
import { ProcessCluster } from "../harness/processes.js";
import { waitFor } from "../harness/wait.js";
import { addStoreWithDefaultStatus } from "./default-status-stores.js";

describe("reading a store's /metrics text", () => {
  const text = [
    "# HELP tinykv_grpc_requests_total x",
    'tinykv_grpc_requests_total{method="RawPut",outcome="ok",store_id="1"} 90',
    'tinykv_grpc_requests_total{method="RawPut",outcome="error",store_id="1"} 10',
    'tinykv_grpc_request_duration_seconds_bucket{le="0.001",method="RawPut"} 50',
    'tinykv_grpc_request_duration_seconds_bucket{le="0.002",method="RawPut"} 90',
    'tinykv_grpc_request_duration_seconds_bucket{le="0.004",method="RawPut"} 100',
    'tinykv_grpc_request_duration_seconds_bucket{le="+Inf",method="RawPut"} 100',
    "tinykv_grpc_request_duration_seconds_count 100",
    "tinykv_store_regions 3",
    "not a sample line {{{",
    'tinykv_store_leaders{store_id="1"} 2',
  ].join("\n");

  it("sums requests and buckets, and estimates quantiles within a bucket as Prometheus does", () => {
    const m = summarizeStoreMetrics(parsePromText(text));
    expect(m.requestsTotal).toBe(100);
    expect(m.requests).toEqual([
      { method: "RawPut", outcome: "error", count: 10 },
      { method: "RawPut", outcome: "ok", count: 90 },
    ]);
    expect([m.regions, m.leaders]).toEqual([3, 2]);
    // Rank 50 is the top of the first bucket; rank 99 is 9/10 into (0.002, 0.004].
    expect(histogramQuantile(0.5, m.latencyBuckets)).toBeCloseTo(0.001, 9);
    expect(histogramQuantile(0.99, m.latencyBuckets)).toBeCloseTo(0.0038, 9);
    expect(histogramQuantile(0.99, [])).toBeUndefined();
  });
});

describe("tinykv-ctl metrics: where a store's /metrics is", () => {
  const lookup = { stores: async () => [{ id: 4n, address: "127.0.0.1:20161" }], timeoutMs: 1000 };
  it("a store id is looked up at the scheduler, its status address the gRPC port + 20; host:port is taken as is", async () => {
    expect(await resolveStatusAddr("4", lookup)).toBe("127.0.0.1:20181");
    expect(await resolveStatusAddr("10.0.0.1:9000", lookup)).toBe("10.0.0.1:9000");
    await expect(resolveStatusAddr("999", lookup)).rejects.toThrow(/the scheduler knows no store 999/);
    await expect(resolveStatusAddr("no-port", lookup)).rejects.toThrow(MetricsTargetError);
    await expect(resolveStatusAddr("http://x:1/metrics", lookup)).rejects.toThrow(
      /want a store id or the store's status host:port/,
    );
  });
});

describe("the scheduler's dashboard endpoints and tinykv-ctl metrics", () => {
  const cluster = new ProcessCluster();
  beforeAll(async () => {
    await cluster.startScheduler({ status: true });
    for (const n of [1, 2, 3]) await addStoreWithDefaultStatus(cluster, n);
  }, 60_000);
  afterAll(() => cluster.shutdown());
  /** A tinykv-ctl command run in-process: its output, or the error the binary would print (and exit 1 with). */
  const ctlCommand = async (args: string[]) => {
    const r = await ctlRun({ scheduler: cluster.schedulerAddr, status: cluster.schedulerStatusAddr }, args);
    return { failed: r.error !== undefined, out: r.error ? `${r.out}${r.error.message}` : r.out };
  };
  const http = async (path: string) => {
    const res = await fetch(`http://${cluster.schedulerStatusAddr}${path}`);
    return { status: res.status, type: res.headers.get("content-type") ?? "", body: await res.text() };
  };

  it("serves the page at /, the JSON status at /status, and the page's script and charting library", async () => {
    const root = await http("/");
    expect(root.status).toBe(200);
    expect(root.type).toMatch(/^text\/html/);
    expect(root.body).toContain('<script src="/dashboard/app.js">');
    const status = await http("/status");
    expect(JSON.parse(status.body)).toHaveProperty("cluster_id");
    for (const path of ["/dashboard/app.js", "/dashboard/app.css", "/dashboard/uPlot.iife.min.js"])
      expect((await http(path)).status, path).toBe(200);
    for (const path of ["/stores", "/regions", "/operators", "/tso"]) expect((await http(path)).status, path).toBe(200);
  });

  it("/dashboard/data carries every store's request figures read from its /metrics", async () => {
    await cluster.put("a", "1");
    type Data = {
      stores: unknown[];
      regions: { leader_store_id: string | null }[];
      store_metrics: { error?: string; metrics?: { requestsTotal: number } }[];
    };
    const data = await waitFor(
      async () => {
        const d = JSON.parse((await http("/dashboard/data")).body) as Data;
        const served = d.store_metrics.reduce((sum, s) => sum + (s.metrics?.requestsTotal ?? 0), 0);
        return d.stores.length === 3 &&
          d.store_metrics.length === 3 &&
          d.store_metrics.every((s) => s.metrics) &&
          served >= 1 &&
          d.regions[0]?.leader_store_id
          ? d
          : undefined;
      },
      {
        timeoutMs: 30_000,
        message: "/dashboard/data never showed 3 stores, all scraped, the put counted and the region's leader",
      },
    );
    expect(data.store_metrics.map((s) => s.error)).toEqual([undefined, undefined, undefined]);
  });

  it("tinykv-ctl metrics <store-id> and <status host:port> summarize a store's requests, latency, regions and leaders", async () => {
    await cluster.put("b", "2");
    const data = JSON.parse((await http("/dashboard/data")).body) as { regions: { leader_store_id: string | null }[] };
    const leader = data.regions[0]!.leader_store_id!;
    const byId = await ctlCommand(["metrics", leader]);
    expect(byId.failed, byId.out).toBe(false);
    expect(byId.out).toMatch(/^store metrics at http:\/\/127\.0\.0\.1:\d+\/metrics/);
    expect(byId.out).toMatch(/\nregions: \d+ {3}leaders: \d+\n/);
    expect(byId.out).toMatch(/\nrequests: [1-9]\d* {3}latency p50 [\d.]+ ms, p99 [\d.]+ ms, mean [\d.]+ ms\n/);
    expect(byId.out).toMatch(/\n {2}RawPut +ok [1-9]/);
    const statusAddr = cluster.stores.get(1)!.statusAddr;
    const byAddr = await ctlCommand(["metrics", statusAddr]);
    expect(byAddr.failed, byAddr.out).toBe(false);
    expect(byAddr.out).toContain(`store metrics at http://${statusAddr}/metrics`);
  });

  it("tinykv-ctl operators shows how each operator ended and why the scheduler made it", async () => {
    // Stores joining one by one make the replica checker add peers to the first region.
    await waitFor(async () => /"SUCCESS"/.test((await http("/operators")).body), {
      timeoutMs: 30_000,
      message: "no operator ever finished",
      intervalMs: 200,
    });
    const r = await ctlCommand(["operators"]);
    expect(r.failed, r.out).toBe(false);
    expect(r.out).toMatch(
      /region \d+ {2}SUCCESS {2}replica-checker: add peer on store \d+\n {2}steps: add peer \d+ on store \d+\n {2}why: replica-checker: /,
    );
  });
});
