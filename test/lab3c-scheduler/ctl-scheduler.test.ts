// tinykv-ctl's scheduler commands: operators with the reasons behind them, store states and the
// tombstone rule, against a real tinyscheduler (status API included).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Peer, Region } from "../../src/proto/metapb.js";
import { SchedulerRpcClient } from "../../src/scheduler/client/client.js";
import type { SchedulerServer } from "../../src/scheduler/server/server.js";
import { startScheduler, tempDir, waitFor } from "./helpers.js";
import { UsageError } from "../../src/cli/ctl/command.js";
import { ctlRun, ctlShell } from "../harness/ctl.js";

let server: SchedulerServer;
let client: SchedulerRpcClient;
let cleanupDir: () => Promise<void>;

beforeAll(async () => {
  const dir = await tempDir();
  cleanupDir = dir.cleanup;
  server = await startScheduler(dir.path);
  client = await SchedulerRpcClient.connect(server.addr);
});

afterAll(async () => {
  client?.close();
  await server?.stop();
  await cleanupDir?.();
});

describe("tinykv-ctl operators and store states", () => {
  it("shows why each operator was made, store states, and refuses to tombstone a store that is not drained", async () => {
    await client.bootstrap({ id: 1n, address: "127.0.0.1:20301" });
    for (const id of [2n, 3n]) await client.putStore({ id, address: `127.0.0.1:2030${id}` });
    const peer = Peer.create({ id: 10n, storeId: 1n });
    const region = Region.create({
      id: 11n,
      startKey: Buffer.alloc(0),
      endKey: Buffer.alloc(0),
      regionEpoch: { version: 1n, confVer: 1n },
      peers: [peer],
    });
    client.regionHeartbeat({ region, leader: peer, pendingPeers: [], approximateSize: 0n });
    await waitFor("the replica checker plans a peer for region 11", async () =>
      (await client.getOperator(11n))?.desc.includes("replica-checker"),
    );
    expect((await client.getOperator(11n))!.desc, "GetOperator's desc carries the reasons").toMatch(
      /\[replica-checker: 1 peer for 3 replicas; store \d is the healthy store/,
    );

    const target = { scheduler: server.addr, status: server.statusAddr! };
    const r = await ctlShell(
      target,
      "operators\nstore 1 tombstone\nstore 1 offline\nstores\nstore 1 up\nstore 1 gone\n",
    );
    expect(r.out).toMatch(
      /running operators: 1\nregion 11 {2}RUNNING step 1\/1 {2}replica-checker: add peer on store [23]\n {2}steps: add peer \d+ on store [23]\n {2}why: replica-checker: 1 peer for 3 replicas; store [23] is the healthy store with the least data\n/,
    );
    expect(r.err).toContain(
      "error: cannot set store 1 from Up to Tombstone: only an Offline store can become a tombstone; set it offline first so its regions move away\n",
    );
    expect(r.out).toContain("store 1 is now Offline\n");
    expect(r.out).toMatch(/1 +127\.0\.0\.1:20301 +Offline +1 +1\n/);
    expect(r.out).toContain("store 1 is Offline: draining, 1 region left to move away\n");
    expect(r.out).toContain("store 1 is now Up\n");
    expect(r.err).toContain('error: store: the state is one of up, offline, tombstone, got "gone"\n');
    expect(r.failures, "the refused tombstone and the unknown state fail").toBe(2);

    const noStatus = await ctlRun({ scheduler: server.addr, status: "127.0.0.1:1", timeoutMs: 2000 }, ["operators"]);
    expect(noStatus.error).toBeDefined();
    expect(noStatus.error).not.toBeInstanceOf(UsageError);
    expect(noStatus.error?.message).toMatch(/^cannot reach the scheduler's status API at 127\.0\.0\.1:1 /);
  });
});
