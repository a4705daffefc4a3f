// Durable metadata across a restart, and the tinyscheduler binary's flag / port / lock errors.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Peer, Region, StoreState } from "../../src/proto/metapb.js";
import { SchedulerRpcClient } from "../../src/scheduler/client/client.js";
import { startScheduler, tempDir, waitFor } from "./helpers.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("scheduler restart", () => {
  it("keeps cluster id, bootstrap, stores, regions and config; stops promptly", async () => {
    const dir = await tempDir();
    cleanups.push(dir.cleanup);
    let server = await startScheduler(dir.path);
    let client = await SchedulerRpcClient.connect(server.addr);
    await client.bootstrap({ id: 1n, address: "127.0.0.1:20160" });
    await client.putStore({ id: 2n, address: "127.0.0.1:20161" });
    await client.putClusterConfig({ maxPeerCount: 1 });
    const peer = Peer.create({ id: 3n, storeId: 1n });
    const region = Region.create({
      id: 4n,
      startKey: Buffer.alloc(0),
      endKey: Buffer.alloc(0),
      regionEpoch: { version: 1n, confVer: 1n },
      peers: [peer],
    });
    client.regionHeartbeat({ region, leader: peer, pendingPeers: [], approximateSize: 0n });
    await waitFor("region routed", () => client.getRegion(Buffer.from("k")));
    client.close();
    const id = server.clusterId;
    const t0 = Date.now();
    await server.stop();
    expect(Date.now() - t0, "stop() is prompt").toBeLessThan(1500);

    server = await startScheduler(dir.path);
    cleanups.push(() => server.stop());
    client = await SchedulerRpcClient.connect(server.addr);
    cleanups.push(() => client.close());
    expect(server.clusterId).toBe(id);
    expect(await client.isBootstrapped()).toBe(true);
    expect((await client.getAllStores()).map((s) => [s.id, s.address, s.state])).toEqual([
      [1n, "127.0.0.1:20160", StoreState.Up],
      [2n, "127.0.0.1:20161", StoreState.Up],
    ]);
    expect((await client.getClusterConfig()).maxPeerCount).toBe(1);
    const r = await client.getRegion(Buffer.from("k"));
    expect(r?.region.id, "region metadata reloaded (leader is learned from the next heartbeat)").toBe(4n);
  });
});

function runCli(args: string[], timeoutMs = 15_000): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", "tsx", "src/cli/tinyscheduler.ts", ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    p.stderr.on("data", (d) => (stderr += d));
    const t = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`tinyscheduler ${args.join(" ")} did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    p.on("exit", (code) => {
      clearTimeout(t);
      resolve({ code, stderr });
    });
  });
}

describe("tinyscheduler binary", () => {
  it("fails with one clear line on an unknown flag, a port in use and a locked data dir", async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    cleanups.push(() => new Promise((r) => blocker.close(r)));
    const port = (blocker.address() as { port: number }).port;
    const dir = await tempDir();
    cleanups.push(dir.cleanup);
    const holder = await startScheduler(`${dir.path}/b`);
    cleanups.push(() => holder.stop());

    // The three runs are independent: start them together to keep the suite fast.
    const [bad, inUse, locked] = await Promise.all([
      runCli(["--bogus"]),
      runCli([
        "--addr",
        `127.0.0.1:${port}`,
        "--status-addr",
        "",
        "--data-dir",
        `${dir.path}/a`,
        "--log-level",
        "error",
      ]),
      runCli(["--addr", "127.0.0.1:0", "--status-addr", "", "--data-dir", `${dir.path}/b`, "--log-level", "error"]),
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    expect(bad.stderr).toMatch(/bogus/);
    expect(inUse.code).not.toBe(0);
    expect(inUse.stderr.trim()).toMatch(new RegExp(`^tinyscheduler: .*127\\.0\\.0\\.1:${port} is already in use$`));
    expect(locked.code).not.toBe(0);
    expect(locked.stderr.trim()).toMatch(/^tinyscheduler: .*locked by another process/);
  });
});
