import * as net from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CF_DEFAULT, Engine } from "../../src/kv/engine/index.js";
import { SchedulerRpcClient } from "../../src/scheduler/client/client.js";
import { spawnNode } from "../harness/processes.js";
import { freePort } from "../harness/ports.js";
import { tempDir, waitFor } from "../harness/wait.js";

/** What a user sees when a store is started against the wrong cluster. */
describe("tinykv-server refuses a data dir of another cluster", () => {
  const dir = tempDir("tinykv-cli-");
  const procs: Array<ReturnType<typeof spawnNode>> = [];
  const clients: SchedulerRpcClient[] = [];
  // A failed assertion must not leave processes behind.
  afterAll(async () => {
    for (const c of clients) c.close();
    for (const p of procs) {
      p.child.kill("SIGKILL");
      await p.exited;
    }
    dir.cleanup();
  });

  async function startScheduler(name: string) {
    const addr = `127.0.0.1:${await freePort()}`;
    const proc = spawnNode("tinyscheduler.js", [
      "--addr",
      addr,
      "--data-dir",
      join(dir.path, name),
      "--status-addr",
      "",
    ]);
    procs.push(proc);
    const client = await SchedulerRpcClient.connect(addr, { connectDeadlineMs: 15_000 });
    clients.push(client);
    return { addr, proc, client };
  }

  it("exits 1 with one clear line naming both cluster ids", async () => {
    const storePath = join(dir.path, "store");
    const a = await startScheduler("sched-a");
    const storeAddr = `127.0.0.1:${await freePort()}`;
    const store = spawnNode("tinykv-server.js", [
      "--status-addr",
      "",
      "--path",
      storePath,
      "--addr",
      storeAddr,
      "--scheduler",
      a.addr,
    ]);
    procs.push(store);
    await waitFor(async () => (await a.client.getAllStores()).length === 1, {
      timeoutMs: 20_000,
      message: `the store never registered\n${store.output()}`,
    });
    store.child.kill("SIGTERM");
    expect(await store.exited).toBe(0);
    a.client.close();
    a.proc.child.kill("SIGTERM");
    await a.proc.exited;

    const b = await startScheduler("sched-b");
    const again = spawnNode("tinykv-server.js", [
      "--status-addr",
      "",
      "--path",
      storePath,
      "--addr",
      storeAddr,
      "--scheduler",
      b.addr,
    ]);
    procs.push(again);
    expect(await again.exited).toBe(1);
    const lines = again
      .output()
      .trim()
      .split("\n")
      .filter((l) => l.startsWith("tinykv-server: error"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(`belongs to cluster \\d+, but the scheduler runs cluster ${b.client.clusterId}`),
    );
    b.client.close();
    b.proc.child.kill("SIGTERM");
    await b.proc.exited;
  });

  it("refuses a data dir of the old key layout with one line, exit 1", async () => {
    // What the previous build left: raw data in CF default and no key-layout marker.
    const storePath = join(dir.path, "old-layout");
    const kv = await Engine.open(join(storePath, "kv"));
    await kv.newBatch().put(CF_DEFAULT, Buffer.from("raw-key"), Buffer.from("raw-value")).write(true);
    await kv.close();
    const s = await startScheduler("sched-old-layout");
    const store = spawnNode("tinykv-server.js", [
      "--status-addr",
      "",
      "--path",
      storePath,
      "--addr",
      `127.0.0.1:${await freePort()}`,
      "--scheduler",
      s.addr,
    ]);
    procs.push(store);
    expect(await store.exited, store.output()).toBe(1);
    const lines = store
      .output()
      .trim()
      .split("\n")
      .filter((l) => l.startsWith("tinykv-server: error"));
    expect(lines, store.output()).toHaveLength(1);
    expect(lines[0]).toMatch(
      /cannot open data dir .*old-layout\/kv: it was written by an older tinykv-ts whose raw and transactional keys shared column families/,
    );
    expect(await s.client.isBootstrapped(), "the refused store bootstrapped nothing").toBe(false);
  });
});

/** A store whose port is taken: it says so and exits, rather than hanging with its raftstore running. */
describe("tinykv-server on a port in use", () => {
  const dir = tempDir("tinykv-cli-port-");
  const procs: Array<ReturnType<typeof spawnNode>> = [];
  afterAll(async () => {
    for (const p of procs) {
      p.child.kill("SIGKILL");
      await p.exited;
    }
    dir.cleanup();
  });

  it("exits 1 with 'address already in use'", async () => {
    const schedAddr = `127.0.0.1:${await freePort()}`;
    const sched = spawnNode("tinyscheduler.js", [
      "--addr",
      schedAddr,
      "--data-dir",
      join(dir.path, "sched"),
      "--status-addr",
      "",
    ]);
    procs.push(sched);
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    try {
      const taken = `127.0.0.1:${(blocker.address() as net.AddressInfo).port}`;
      const store = spawnNode("tinykv-server.js", [
        "--status-addr",
        "",
        "--path",
        join(dir.path, "store"),
        "--addr",
        taken,
        "--scheduler",
        schedAddr,
      ]);
      procs.push(store);
      const exited = await Promise.race([
        store.exited,
        new Promise<"hung">((r) => setTimeout(() => r("hung"), 30_000)),
      ]);
      expect(exited, `the store did not exit\n${store.output()}`).toBe(1);
      expect(store.output()).toMatch(/address already in use/);
    } finally {
      blocker.close();
    }
  }, 45_000);
});
