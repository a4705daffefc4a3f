// Real processes: three tinyscheduler members, one tinykv-server, a transactional client. The
// scheduler leader is killed with SIGKILL in the middle of the workload: another member takes
// over within seconds, the workload goes on, and no timestamp or id is ever handed out twice.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { KvClient } from "../../src/client/client.js";
import { SchedulerRpcClient } from "../../src/scheduler/client/client.js";
import type { SchedulerApi } from "../../src/scheduler/api.js";
import { freePort } from "../harness/ports.js";
import type { Proc } from "../harness/processes.js";
import { FAST_STORE_CONFIG, spawnNode } from "../harness/processes.js";
import { tempDir, waitFor } from "../harness/wait.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface MemberProc {
  name: string;
  addr: string;
  proc: Proc;
}

async function startMembers(dir: string): Promise<MemberProc[]> {
  const names = ["s1", "s2", "s3"];
  const peers = await Promise.all(names.map(async (n) => `${n}=127.0.0.1:${await freePort()}`));
  const members: MemberProc[] = [];
  for (const name of names) {
    const addr = `127.0.0.1:${await freePort()}`;
    const proc = spawnNode("tinyscheduler.js", [
      ...["--name", name, "--initial-cluster", peers.join(","), "--addr", addr],
      ...["--data-dir", join(dir, name), "--status-addr", ""],
    ]);
    members.push({ name, addr, proc });
  }
  return members;
}

/** A scheduler connection that writes down every timestamp it hands to the client. */
function recordingTso(scheduler: SchedulerRpcClient, seen: bigint[]): SchedulerApi {
  return new Proxy(scheduler, {
    get(target, prop) {
      if (prop === "tso") {
        return async (count = 1) => {
          const first = await target.tso(count);
          for (let i = 0n; i < BigInt(count); i++) seen.push(first + i);
          return first;
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

describe("replicated tinyscheduler (processes)", () => {
  it("kill -9 of the leader under a transactional workload: a new leader within seconds, nothing repeats", async () => {
    const dir = tempDir("tinysched-proc-");
    const procs: Proc[] = [];
    cleanups.push(async () => {
      for (const p of procs) {
        p.child.kill("SIGKILL");
        await p.exited;
      }
      dir.cleanup();
    });
    const members = await startMembers(dir.path);
    procs.push(...members.map((m) => m.proc));
    const all = members.map((m) => m.addr);
    const admin = await SchedulerRpcClient.connect(all, { connectDeadlineMs: 15_000, retryDeadlineMs: 15_000 });
    cleanups.push(() => admin.close());
    const leader = members.find((m) => m.addr === admin.leaderAddr)!;
    // Stores and clients list the followers first: they must find the leader through them.
    const followersFirst = [...members.filter((m) => m !== leader), leader].map((m) => m.addr).join(",");

    const configPath = join(dir.path, "store-config.json");
    writeFileSync(configPath, JSON.stringify(FAST_STORE_CONFIG));
    const storeAddr = `127.0.0.1:${await freePort()}`;
    const store = spawnNode("tinykv-server.js", [
      ...["--path", join(dir.path, "store1"), "--addr", storeAddr, "--status-addr", ""],
      ...["--scheduler", followersFirst, "--config", configPath],
    ]);
    procs.push(store);
    await waitFor(async () => (await admin.getRegion(Buffer.from("k")))?.leader, {
      timeoutMs: 15_000,
      message: "the store to bootstrap through a follower-first list and report its region leader",
    });

    const stamps: bigint[] = [];
    const scheduler = await SchedulerRpcClient.connect(followersFirst, {
      connectDeadlineMs: 10_000,
      retryDeadlineMs: 15_000,
    });
    const kv = KvClient.withScheduler(recordingTso(scheduler, stamps), { timeoutMs: 15_000 });
    cleanups.push(() => kv.close());

    const committed = new Map<string, string>();
    const ids: bigint[] = [];
    let stop = false;
    let failure: unknown;
    const transactions = (async () => {
      for (let i = 0; !stop; i++) {
        const txn = await kv.begin();
        const key = `acct-${i % 10}`;
        const value = `v${i}`;
        txn.put(key, value);
        await txn.commit();
        committed.set(key, value);
      }
    })().catch((err: unknown) => {
      failure = err;
    });
    const allocating = (async () => {
      while (!stop) ids.push(await admin.allocId());
    })().catch((err: unknown) => {
      failure = err;
    });

    await waitFor(() => stamps.length >= 30 || failure, {
      timeoutMs: 15_000,
      message: "30 timestamps before the kill",
    });
    const stampsBefore = stamps.length;
    leader.proc.child.kill("SIGKILL");
    await leader.proc.exited;
    const killedAt = Date.now();
    const survivors = members.filter((m) => m !== leader).map((m) => m.addr);
    const probe = await SchedulerRpcClient.connect(survivors, { connectDeadlineMs: 10_000 });
    cleanups.push(() => probe.close());
    expect(survivors).toContain(probe.leaderAddr);
    process.stderr.write(
      `scheduler leader ${leader.name} killed; new leader at ${probe.leaderAddr} after ${Date.now() - killedAt} ms\n`,
    );
    await waitFor(() => stamps.length >= stampsBefore + 30 || failure, {
      timeoutMs: 15_000,
      message: "the workload to get 30 more timestamps after the kill",
    });
    stop = true;
    await Promise.all([transactions, allocating]);
    expect(failure, `the workload failed: ${String(failure)}\n${store.output().slice(-2000)}`).toBeUndefined();

    expect(new Set(stamps).size, "no timestamp handed out twice").toBe(stamps.length);
    for (let i = 1; i < stamps.length; i++)
      expect(stamps[i]! > stamps[i - 1]!, `timestamp ${i} after ${i - 1}`).toBe(true);
    expect(new Set(ids).size, "no id handed out twice").toBe(ids.length);
    for (const [key, value] of committed) {
      const txn = await kv.begin();
      expect((await txn.get(key))?.toString(), `committed ${key}`).toBe(value);
    }
  }, 120_000);

  it("refuses replication flags that cannot work, saying why", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["--name", "s1"], /--name and --peer-addr need --initial-cluster/],
      [["--initial-cluster", "s1=127.0.0.1:2380"], /--initial-cluster needs --name/],
      [["--name", "s9", "--initial-cluster", "s1=127.0.0.1:2380"], /--name s9 is not in it/],
    ];
    const dir = tempDir("tinysched-flags-");
    cleanups.push(() => dir.cleanup());
    await Promise.all(
      cases.map(async ([args, why]) => {
        const p = spawnNode("tinyscheduler.js", [
          ...args,
          "--addr",
          "127.0.0.1:0",
          "--data-dir",
          dir.path,
          "--status-addr",
          "",
        ]);
        const code = await p.exited;
        expect(code, `exit code of tinyscheduler ${args.join(" ")}`).not.toBe(0);
        expect(p.output()).toMatch(why);
      }),
    );
  });
});
