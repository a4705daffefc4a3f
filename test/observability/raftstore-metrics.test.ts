/**
 * The raftstore's stages as a user of /metrics sees them (write and read stages, turns, the raft
 * engine's group-commit write), and the slow log: one line per slow write or read with its stages.
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { RaftstoreMetrics, raftstoreGauges, StoreMetrics } from "../../src/kv/status/index.js";
import { delay, isolate } from "../../src/kv/transport/filters.js";
import { Registry } from "../../src/util/metrics.js";
import type { ClusterOptions } from "../harness/cluster.js";
import { TestCluster } from "../harness/cluster.js";
import { waitFor } from "../harness/wait.js";

function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

describe("raftstore metrics and the slow log", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  /** A 3-store cluster whose raftstores report to per-store registries, logging slow requests past 30 ms. */
  async function startObserved(config: ClusterOptions["config"] = {}) {
    const registries = new Map<bigint, Registry>();
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split("\n").filter(Boolean))
          lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const log = pino({ level: "warn" }, sink);
    const c = new TestCluster({
      stores: 3,
      config,
      observer: (id) => {
        const registry = new Registry();
        registries.set(id, registry);
        return new RaftstoreMetrics(registry, log, 30);
      },
    });
    cluster = c;
    await c.start();
    const metrics = async () => (await Promise.all([...registries.values()].map((r) => r.metrics()))).join("\n");
    const metricsOf = (id: bigint) => registries.get(id)!.metrics();
    return { c, lines, metrics, metricsOf };
  }

  it("every acknowledged write passes the propose, commit and apply stages; a slow one logs its stages", async () => {
    const { c, lines, metrics } = await startObserved();
    for (let i = 0; i < 10; i++) await c.put(`k${i}`, `v${i}`);
    const all = await metrics();
    expect(sample(all, "tinykv_raftstore_writes_total", { outcome: "applied" })).toBeGreaterThanOrEqual(10);
    for (const stage of ["propose", "commit", "apply"]) {
      expect(
        sample(all, "tinykv_raftstore_write_stage_duration_seconds_count", { stage }),
        stage,
      ).toBeGreaterThanOrEqual(10);
    }
    expect(sample(all, "tinykv_raft_engine_write_duration_seconds_count", { sync: "true" })).toBeGreaterThan(0);
    expect(sample(all, "tinykv_raftstore_turn_duration_seconds_count")).toBeGreaterThan(0);
    expect(sample(all, "tinykv_raftstore_turn_log_entries_sum")).toBeGreaterThanOrEqual(10);

    // Followers' acknowledgements 40-60 ms late: the write waits past the 30 ms slow threshold in its commit stage.
    const before = lines.length;
    const remove = c.network.addFilter(delay(40, 60));
    await c.put("slow", "v");
    remove();
    const slow = lines.slice(before).filter((l) => l.msg === "slow write");
    expect(slow.length, JSON.stringify(lines.slice(before))).toBeGreaterThanOrEqual(1);
    const line = slow[0]!;
    expect(line.outcome).toBe("applied");
    expect(typeof line.region_id).toBe("string");
    expect(line.total_ms as number).toBeGreaterThanOrEqual(30);
    expect(line.commit_ms as number).toBeGreaterThanOrEqual(30);
    expect(typeof line.queued_ms).toBe("number");
    expect(typeof line.apply_ms).toBe("number");
  });
  it("every linearizable read passes the queue, confirm and apply stages; a slow one logs its stages", async () => {
    // Every read takes a ReadIndex round (a lease would answer without the confirm wait measured below).
    const { c, lines, metrics } = await startObserved({ leaseReads: false });
    await c.put("r", "v");
    for (let i = 0; i < 10; i++) expect((await c.get("r"))?.toString()).toBe("v");
    const all = await metrics();
    expect(sample(all, "tinykv_raftstore_reads_total", { outcome: "served" })).toBeGreaterThanOrEqual(10);
    for (const stage of ["queue", "confirm", "apply"]) {
      expect(
        sample(all, "tinykv_raftstore_read_stage_duration_seconds_count", { stage }),
        stage,
      ).toBeGreaterThanOrEqual(10);
    }

    // The leader's ReadIndex heartbeats are answered 40-60 ms late: the read waits past 30 ms to be confirmed.
    const before = lines.length;
    const remove = c.network.addFilter(delay(40, 60));
    expect((await c.get("r"))?.toString()).toBe("v");
    remove();
    const slow = lines.slice(before).filter((l) => l.msg === "slow read");
    expect(slow.length, JSON.stringify(lines.slice(before))).toBeGreaterThanOrEqual(1);
    const line = slow[0]!;
    expect(line.outcome).toBe("served");
    expect(typeof line.region_id).toBe("string");
    expect(line.total_ms as number).toBeGreaterThanOrEqual(30);
    expect(line.confirm_ms as number).toBeGreaterThanOrEqual(30);
    expect(typeof line.queued_ms).toBe("number");
    expect(typeof line.apply_ms).toBe("number");
  });
  it("log GC counts compactions and entries; a lagging follower is a pending peer and catches up by a counted snapshot", async () => {
    const { c, metrics, metricsOf } = await startObserved({ raftLogGcCountLimit: 10 });
    await c.put("k0", "v");
    const leader = c.leaderOf(1n)!;
    const lagging = c.storeIds.find((id) => id !== leader)!;
    const gauges = new StoreMetrics({ registry: new Registry() });
    gauges.watchStore(raftstoreGauges(c.store(leader)!));
    c.network.addFilter(isolate(lagging));
    for (let i = 1; i <= 30; i++) await c.put(`k${i}`, `v${i}`);
    const leaderPeer = c.store(leader)!.peers.get(1n)!;
    await waitFor(() => leaderPeer.storage.truncatedIndex > c.store(lagging)!.peers.get(1n)!.storage.lastIndex(), {
      timeoutMs: 10_000,
      message: "the leader never compacted its log past the isolated follower",
    });
    expect(sample(await gauges.text(), "tinykv_store_pending_peers"), "the isolated follower is pending").toBe(1);
    // The truncated index moves as the CompactLog applies; the counter once its kv batch is written.
    await waitFor(async () => sample(await metrics(), "tinykv_raftstore_log_gc_total") >= 1, {
      timeoutMs: 5_000,
      message: "no store counted the log compaction",
    });
    const gc = await metrics();
    expect(sample(gc, "tinykv_raftstore_log_gc_entries_total")).toBeGreaterThanOrEqual(10);

    c.network.clearFilters();
    await waitFor(async () => (await c.engineGet(lagging, "k30"))?.toString() === "v30", {
      timeoutMs: 10_000,
      message: "the isolated follower never caught up",
    });
    const sent = await metricsOf(leader);
    expect(sample(sent, "tinykv_raftstore_snapshots_sent_total", { outcome: "complete" })).toBeGreaterThanOrEqual(1);
    expect(sample(sent, "tinykv_raftstore_snapshot_sent_bytes_total")).toBeGreaterThan(0);
    const received = await metricsOf(lagging);
    expect(
      sample(received, "tinykv_raftstore_snapshots_received_total", { outcome: "accepted" }),
    ).toBeGreaterThanOrEqual(1);
    expect(sample(received, "tinykv_raftstore_snapshot_received_bytes_total")).toBeGreaterThan(0);
    await waitFor(async () => sample(await gauges.text(), "tinykv_store_pending_peers") === 0, {
      timeoutMs: 10_000,
      message: "the follower stayed pending after its snapshot",
    });
  });
});
