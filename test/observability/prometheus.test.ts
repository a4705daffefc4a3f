/**
 * A real Prometheus scrapes a running cluster with the scrape config the README documents: the
 * test takes the README's YAML, points its targets at a process cluster on loopback, starts
 * `prometheus` on a free port with a temp storage dir, waits until its HTTP API shows every
 * target up, and queries one of our series.
 *
 * Needs Debian's `prometheus` (on PATH, or PROMETHEUS_PATH); without it the test is skipped with
 * a message saying so.
 */
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../harness/ports.js";
import { ProcessCluster } from "../harness/processes.js";
import { tempDir, waitFor } from "../harness/wait.js";

function findPrometheus(): string | undefined {
  if (process.env.PROMETHEUS_PATH)
    return existsSync(process.env.PROMETHEUS_PATH) ? process.env.PROMETHEUS_PATH : undefined;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(dir, "prometheus");
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

const prometheusPath = findPrometheus();
if (!prometheusPath) {
  console.warn(
    "prometheus scrape test skipped: no prometheus binary on PATH (or PROMETHEUS_PATH); apt-get install -y prometheus",
  );
}

/** The README's Prometheus config, with this cluster's targets and a 1 s scrape interval. */
function readmeScrapeConfig(schedulerTarget: string, storeTargets: string[]): string {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const yaml = /```yaml\n(global:[\s\S]*?scrape_configs:[\s\S]*?)```/.exec(readme)?.[1];
  if (!yaml) throw new Error("the README has no ```yaml block with global: and scrape_configs:");
  const list = (targets: string[]) => `[${targets.map((t) => JSON.stringify(t)).join(", ")}]`;
  const jobs = ["tinykv-scheduler", "tinykv-store"];
  for (const job of jobs)
    if (!yaml.includes(`job_name: ${job}`)) throw new Error(`the README's scrape config has no job ${job}`);
  // Each job's one targets list, in the README's order: the scheduler's, then the stores'.
  const targets = [list([schedulerTarget]), list(storeTargets)];
  let i = 0;
  const config = yaml
    .replace(/scrape_interval: \S+/, "scrape_interval: 1s")
    .replace(/targets: \[[^\]]*\]/g, () => `targets: ${targets[i++] ?? "[]"}`);
  if (i !== jobs.length) throw new Error(`the README's scrape config has ${i} targets lists, want ${jobs.length}`);
  return config;
}

interface Target {
  labels: { job: string; instance: string };
  health: string;
  lastError: string;
}

describe.skipIf(!prometheusPath)("a real Prometheus scrapes the scheduler and every store", () => {
  const cluster = new ProcessCluster();
  const dir = tempDir("tinykv-prometheus-");
  let prometheus: ChildProcess | undefined;
  let exited: Promise<number | null> | undefined;
  let output = "";
  let api = "";

  beforeAll(async () => {
    await cluster.startScheduler({ status: true });
    for (const n of [1, 2, 3]) await cluster.addStore(n, { status: true });
    await cluster.put("a", "1");
    const configFile = join(dir.path, "prometheus.yml");
    const stores = [...cluster.stores.values()].map((s) => s.statusAddr);
    writeFileSync(configFile, readmeScrapeConfig(cluster.schedulerStatusAddr, stores));
    api = `127.0.0.1:${await freePort()}`;
    prometheus = spawn(
      prometheusPath!,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir.path, "data")}`,
        `--web.listen-address=${api}`,
        "--log.level=warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const keep = (d: Buffer) => {
      output = (output + d.toString()).slice(-50_000);
    };
    prometheus.stdout!.on("data", keep);
    prometheus.stderr!.on("data", keep);
    const child = prometheus;
    exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
  }, 60_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.kill("SIGTERM");
      const stopped = await Promise.race([exited, new Promise((r) => setTimeout(() => r("timeout"), 10_000))]);
      if (stopped === "timeout") prometheus.kill("SIGKILL");
    }
    await cluster.shutdown();
    dir.cleanup();
  }, 30_000);

  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(`http://${api}${path}`);
    if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
    const body = (await res.json()) as { status: string; data: T };
    if (body.status !== "success") throw new Error(`GET ${path}: status ${body.status}`);
    return body.data;
  };

  it("shows all four targets up, then answers a query over our series", async () => {
    let last: Target[] = [];
    const end = await waitFor(
      async () => {
        // Exited (a bad config, a taken port): stop waiting and say what it printed.
        if (prometheus?.exitCode !== null) return "exited";
        last = (await get<{ activeTargets: Target[] }>("/api/v1/targets")).activeTargets;
        return last.length === 4 && last.every((t) => t.health === "up") && "up";
      },
      { timeoutMs: 45_000, intervalMs: 250, message: "Prometheus never had the scheduler and 3 stores up" },
    ).catch((err: unknown) => {
      const seen = last.map((t) => `${t.labels.job} ${t.labels.instance} ${t.health} ${t.lastError}`).join("; ");
      throw new Error(`${(err as Error).message}; targets: [${seen}]; prometheus said: ${output}`);
    });
    expect(end, `prometheus exited ${prometheus?.exitCode}: ${output}`).toBe("up");
    expect(
      last
        .filter((t) => t.labels.job === "tinykv-store")
        .map((t) => t.labels.instance)
        .sort(),
    ).toEqual([...cluster.stores.values()].map((s) => s.statusAddr).sort());
    type Vector = { result: { metric: Record<string, string>; value: [number, string] }[] };
    const puts = await get<Vector>(
      `/api/v1/query?query=${encodeURIComponent('sum(tinykv_grpc_requests_total{job="tinykv-store",method="RawPut"})')}`,
    );
    expect(Number(puts.result[0]?.value[1])).toBeGreaterThanOrEqual(1);
    const stores = await get<Vector>(
      `/api/v1/query?query=${encodeURIComponent('tinykv_scheduler_stores{job="tinykv-scheduler",state="Up"}')}`,
    );
    expect(stores.result.reduce((sum, r) => sum + Number(r.value[1]), 0)).toBe(3);
  });
});
