/**
 * What an operator scrapes: every tinykv-server and tinyscheduler serves Prometheus /metrics on
 * its status address, and the series move as traffic flows.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TinyKvRpc } from "../../src/client/index.js";
import { freePort } from "../harness/ports.js";
import { ProcessCluster, spawnNode } from "../harness/processes.js";
import { tempDir, waitFor } from "../harness/wait.js";

async function scrape(addr: string, path = "/metrics"): Promise<string> {
  const res = await fetch(`http://${addr}${path}`);
  if (!res.ok) throw new Error(`GET ${path} on ${addr}: HTTP ${res.status}`);
  return res.text();
}

/** The sum of the series called `name` whose labels include `labels`; undefined when there is none. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}

function seriesNamed(text: string, name: string): string[] {
  return text.split("\n").filter((l) => !l.startsWith("#") && (l.startsWith(`${name}{`) || l.startsWith(`${name} `)));
}

describe("tinykv-server --standalone: /metrics on the gRPC port + 20 by default", () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());

  it("counts and times each rpc by method and outcome, with the process series beside them", async () => {
    // A gRPC port whose +20 is free too.
    let port = 0;
    for (let i = 0; i < 20 && port === 0; i++) {
      const p = await freePort();
      if (p + 20 > 65535) continue;
      const probe = await fetch(`http://127.0.0.1:${p + 20}/`).then(
        () => true,
        () => false,
      );
      if (!probe) port = p;
    }
    expect(port, "found no free port pair").not.toBe(0);
    const server = spawnNode("tinykv-server.js", ["--standalone", `--path=${dir.path}`, `--addr=127.0.0.1:${port}`]);
    const statusAddr = `127.0.0.1:${port + 20}`;
    const rpc = new TinyKvRpc(`127.0.0.1:${port}`, 2000);
    try {
      await waitFor(() => scrape(statusAddr).then(() => true), {
        timeoutMs: 15_000,
        message: `no /metrics on ${statusAddr}; output: ${server.output()}`,
      });
      for (let i = 0; i < 5; i++) await rpc.rawPut({ key: Buffer.from(`k${i}`), value: Buffer.from("v") });
      await rpc.rawGet({ key: Buffer.from("k1") });
      expect((await rpc.rawPut({ key: Buffer.alloc(0), value: Buffer.from("v") })).error).toMatch(
        /key must not be empty/,
      );
      const text = await scrape(statusAddr);
      expect(sample(text, "tinykv_grpc_requests_total", { method: "RawPut", outcome: "ok" })).toBe(5);
      expect(sample(text, "tinykv_grpc_requests_total", { method: "RawGet", outcome: "ok" })).toBe(1);
      expect(sample(text, "tinykv_grpc_requests_total", { method: "RawPut", outcome: "error" })).toBe(1);
      expect(sample(text, "tinykv_grpc_request_duration_seconds_count", { method: "RawPut" })).toBe(6);
      expect(seriesNamed(text, "process_resident_memory_bytes")).toHaveLength(1);
      expect(seriesNamed(text, "nodejs_eventloop_lag_seconds")).toHaveLength(1);
      const status = JSON.parse(await scrape(statusAddr, "/status")) as { mode: string };
      expect(status.mode).toBe("standalone");
    } finally {
      rpc.close();
      server.child.kill("SIGTERM");
      await server.exited;
    }
  });

  it('--status-addr "" serves no status port; a taken one is refused with one clear line', async () => {
    const taken = await freePort();
    const holder = spawnNode("tinykv-server.js", [
      "--standalone",
      `--path=${dir.path}/a`,
      `--addr=127.0.0.1:${await freePort()}`,
      `--status-addr=127.0.0.1:${taken}`,
    ]);
    try {
      await waitFor(() => scrape(`127.0.0.1:${taken}`).then(() => true), {
        timeoutMs: 15_000,
        message: `no /metrics on ${taken}; output: ${holder.output()}`,
      });
      const clash = spawnNode("tinykv-server.js", [
        "--standalone",
        `--path=${dir.path}/b`,
        `--addr=127.0.0.1:${await freePort()}`,
        `--status-addr=127.0.0.1:${taken}`,
      ]);
      expect(await clash.exited).toBe(1);
      const errors = clash
        .output()
        .trim()
        .split("\n")
        .filter((l) => l.startsWith("tinykv-server: error"));
      expect(errors, clash.output()).toHaveLength(1);
      expect(errors[0]).toContain(`status address 127.0.0.1:${taken}: address in use`);
    } finally {
      holder.child.kill("SIGTERM");
      await holder.exited;
    }
  });
});

describe("a cluster's /metrics: stores and the scheduler", () => {
  const cluster = new ProcessCluster();
  beforeAll(async () => {
    await cluster.startScheduler({ status: true });
    for (const n of [1, 2, 3]) await cluster.addStore(n, { status: true });
  }, 60_000);
  afterAll(() => cluster.shutdown());

  it("stores report their regions and leaders, the scheduler its stores and regions", async () => {
    await cluster.put("a", "1");
    const storeStatus = [...cluster.stores.values()].map((s) => s.statusAddr);
    const counts = await waitFor(
      async () => {
        const texts = await Promise.all(storeStatus.map((a) => scrape(a)));
        const regions = texts.map((t) => sample(t, "tinykv_store_regions") ?? 0);
        const leaders = texts.reduce((sum, t) => sum + (sample(t, "tinykv_store_leaders") ?? 0), 0);
        return regions.every((r) => r >= 1) && leaders >= 1 ? { regions, leaders } : undefined;
      },
      { timeoutMs: 30_000, message: "every store hosting the first region, one of them its leader" },
    );
    expect(counts.leaders).toBe(1);
    const rawPuts = (await Promise.all(storeStatus.map((a) => scrape(a)))).reduce(
      (sum, t) => sum + (sample(t, "tinykv_grpc_requests_total", { method: "RawPut", outcome: "ok" }) ?? 0),
      0,
    );
    const dbg = [...cluster.stores.values()].map((s) => `${s.addr} status ${s.statusAddr}`).join("; ");
    const all = (await Promise.all(storeStatus.map((a) => scrape(a))))
      .map((t) =>
        t
          .split("\n")
          .filter((l) => l.startsWith("tinykv_"))
          .join("\n"),
      )
      .join("\n---\n");
    expect(rawPuts, `${dbg}\n${all}`).toBeGreaterThanOrEqual(1);
    const sched = await waitFor(
      async () => {
        const t = await scrape(cluster.schedulerStatusAddr);
        return sample(t, "tinykv_scheduler_stores", { state: "Up", down: "false" }) === 3 ? t : undefined;
      },
      { timeoutMs: 30_000, message: "the scheduler counting 3 stores up" },
    );
    expect(sample(sched, "tinykv_scheduler_regions")).toBeGreaterThanOrEqual(1);
    expect(sample(sched, "tinykv_scheduler_region_heartbeats_total")).toBeGreaterThanOrEqual(1);
    expect(sample(sched, "tinykv_scheduler_store_heartbeats_total")).toBeGreaterThanOrEqual(3);
    expect(seriesNamed(sched, "process_resident_memory_bytes")).toHaveLength(1);
    const store1 = await scrape(storeStatus[0]!);
    for (const name of [
      "tinykv_store_pending_peers",
      "tinykv_raftstore_reads_total",
      "tinykv_raftstore_snapshots_sent_total",
      "tinykv_raftstore_snapshots_received_total",
      "tinykv_raftstore_snapshot_sent_bytes_total",
      "tinykv_raftstore_log_gc_total",
      "tinykv_raftstore_log_gc_entries_total",
      "nodejs_eventloop_lag_seconds",
      "nodejs_heap_size_used_bytes",
    ])
      expect(seriesNamed(store1, name).length, name).toBeGreaterThanOrEqual(1);
    const storeJson = JSON.parse(await scrape(storeStatus[0]!, "/status")) as { regions: unknown[] };
    expect(storeJson.regions.length).toBeGreaterThanOrEqual(1);
  });
});

describe("tinykv-server --check-disk", () => {
  it("measures synced writes on the data dir and says whether the disk is fit", async () => {
    const dir = tempDir();
    try {
      const server = fileURLToPath(new URL("../../dist/src/cli/tinykv-server.js", import.meta.url));
      const child = spawn(process.execPath, [server, "--check-disk", `--path=${dir.path}`], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
      expect(out).toMatch(
        /^disk check of .*: 200 synced writes of 4096 B\n {2}fdatasync latency p50 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms\n {2}(fit|slow|unfit): /,
      );
      expect(code).toBe(/\n {2}fit: /.test(out) ? 0 : 1);
    } finally {
      dir.cleanup();
    }
  });
});
