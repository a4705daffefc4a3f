import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { KvClient } from "../../src/client/client.js";
import { SchedulerRpcClient } from "../../src/scheduler/client/client.js";
import type { Proc } from "../harness/processes.js";
import { FAST_STORE_CONFIG, spawnNode } from "../harness/processes.js";
import { freePort } from "../harness/ports.js";
import { tempDir, waitFor } from "../harness/wait.js";

/** A process that must refuse its flags: its exit code and one-line error. */
async function refused(script: string, args: string[]): Promise<{ code: number | null; out: string }> {
  const p = spawnNode(script, args);
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 10_000);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, out: p.output() };
}

describe("advertise addresses", () => {
  const dir = tempDir("tinykv-advertise-");
  const procs: Proc[] = [];
  afterAll(async () => {
    for (const p of procs) {
      p.child.kill("SIGKILL");
      await p.exited;
    }
    dir.cleanup();
  });

  it("a scheduler and a store listening on 0.0.0.0 advertise 127.0.0.1, and a client reaches the store through the scheduler", async () => {
    const schedPort = await freePort();
    const storePort = await freePort();
    procs.push(
      spawnNode("tinyscheduler.js", [
        "--addr",
        `0.0.0.0:${schedPort}`,
        "--advertise-addr",
        `127.0.0.1:${schedPort}`,
        "--data-dir",
        join(dir.path, "sched"),
        "--status-addr",
        "",
      ]),
    );
    const config = join(dir.path, "config.json");
    writeFileSync(config, JSON.stringify({ ...FAST_STORE_CONFIG }));
    // max-replicas 3 is the default, but one store serves writes while the others never come.
    procs.push(
      spawnNode("tinykv-server.js", [
        "--path",
        join(dir.path, "store"),
        "--addr",
        `0.0.0.0:${storePort}`,
        "--advertise-addr",
        `127.0.0.1:${storePort}`,
        "--status-addr",
        "",
        "--scheduler",
        `127.0.0.1:${schedPort}`,
        "--config",
        config,
      ]),
    );

    const sched = await SchedulerRpcClient.connect(`127.0.0.1:${schedPort}`, { connectDeadlineMs: 15_000 });
    try {
      expect(sched.leaderAddr).toBe(`127.0.0.1:${schedPort}`);
      const stores = await waitFor(
        async () => {
          const all = await sched.getAllStores(true);
          // Bootstrap registers the store with no address; PutStore then sets it.
          return all.length > 0 && all.every((s) => s.address !== "") ? all : undefined;
        },
        {
          timeoutMs: 20_000,
          message: `the store never registered its address with the scheduler; output: ${procs.map((p) => p.output()).join("\n")}`,
        },
      );
      expect(stores.map((s) => s.address)).toEqual([`127.0.0.1:${storePort}`]);
    } finally {
      sched.close();
    }

    const kv = await KvClient.connect({ scheduler: `127.0.0.1:${schedPort}`, timeoutMs: 20_000 });
    try {
      await kv.put("advertised", "reachable");
      expect((await kv.get("advertised"))?.toString()).toBe("reachable");
    } finally {
      kv.close();
    }
  }, 60_000);

  it("refuses a wildcard or empty advertise host with a clear error, before starting", async () => {
    const port = await freePort();
    const store = await refused("tinykv-server.js", [
      "--path",
      join(dir.path, "refused"),
      "--addr",
      `0.0.0.0:${port}`,
      "--scheduler",
      "127.0.0.1:1",
    ]);
    expect(store.code).toBe(2);
    expect(store.out).toMatch(
      /tinykv-server: error: --addr "0\.0\.0\.0:\d+": --advertise-addr is not set.*cannot dial the wildcard host 0\.0\.0\.0/,
    );

    const empty = await refused("tinykv-server.js", [
      "--path",
      join(dir.path, "refused"),
      "--addr",
      `0.0.0.0:${port}`,
      "--advertise-addr",
      `:${port}`,
      "--scheduler",
      "127.0.0.1:1",
    ]);
    expect(empty.code).toBe(2);
    expect(empty.out).toMatch(/--advertise-addr ":\d+": other machines cannot dial an empty host/);

    const sched = await refused("tinyscheduler.js", [
      "--addr",
      `127.0.0.1:${port}`,
      "--advertise-addr",
      `0.0.0.0:${port}`,
      "--data-dir",
      join(dir.path, "refused-sched"),
    ]);
    expect(sched.code).toBe(2);
    expect(sched.out).toMatch(
      /tinyscheduler: error: --advertise-addr "0\.0\.0\.0:\d+": other machines cannot dial the wildcard host/,
    );
  }, 30_000);
});
