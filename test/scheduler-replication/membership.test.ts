// Membership changes of the replicated scheduler (etcd's member add/remove): a 4th member joins
// with --initial-cluster-state existing and catches up by snapshot, the leader is removed and steps
// down, and the cluster hands out strictly increasing timestamps all along. The membership is
// persisted: a restart does not fall back to --initial-cluster.
import { afterEach, describe, expect, it } from "vitest";
import type { SchedulerRpcClient } from "../../src/scheduler/client/client.js";
import { ctlCommands } from "../../src/cli/ctl/commands.js";
import { waitFor } from "../harness/wait.js";
import { bootstrap, connectClient, MemberGroup } from "./members.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function connect(group: MemberGroup, names: string[]): Promise<SchedulerRpcClient> {
  return connectClient(group, names, cleanups);
}

/** Asks for timestamps back to back until stopped; stop() throws the first failure, if any. */
function tsoLoop(client: SchedulerRpcClient): { stamps: bigint[]; stop: () => Promise<void> } {
  const stamps: bigint[] = [];
  let running = true;
  let failure: unknown;
  const done = (async () => {
    while (running) stamps.push(await client.tso());
  })().catch((err: unknown) => {
    failure = err;
  });
  cleanups.push(() => {
    running = false;
  });
  return {
    stamps,
    stop: async () => {
      running = false;
      await done;
      if (failure) throw failure;
    },
  };
}

function namesOf(r: { members: Array<{ name: string }> }): string[] {
  return r.members.map((m) => m.name).sort();
}

describe("replicated scheduler membership changes", () => {
  it("adds a 4th member that catches up by snapshot, removes the leader, and TSO never stops or repeats", async () => {
    const group = await MemberGroup.create(4);
    cleanups.push(() => group.close());
    const first = ["s1", "s2", "s3"];
    await Promise.all(first.map((n) => group.start(n, group.clusterOf(first))));
    await group.leader();
    const client = await connect(group, first);
    await bootstrap(client);
    const tso = tsoLoop(client);

    // member add: the leader proposes it; the new member then joins and gets a snapshot.
    const added = await client.memberAdd("s4", group.peerAddr("s4"));
    expect(added.header?.error).toBeUndefined();
    expect(namesOf(added)).toEqual(["s1", "s2", "s3", "s4"]);
    const s4 = await group.start("s4", group.initialCluster, "existing");
    await waitFor(
      async () => s4.storage.snapshot().metadata!.index > 0n && (await s4.knownClusterId()) === client.clusterId,
      {
        timeoutMs: 15_000,
        message: "s4 to install the leader's snapshot (with the cluster id)",
      },
    );
    await waitFor(async () => namesOf(await s4.getMembers()).join(",") === "s1,s2,s3,s4", {
      timeoutMs: 15_000,
      message: "s4 to know all four members",
    });

    // member remove of the leader: it steps down, another one serves.
    const leader = await group.leader();
    const removed = await client.memberRemove(leader);
    expect(removed.header?.error).toBeUndefined();
    const rest = ["s1", "s2", "s3", "s4"].filter((n) => n !== leader);
    expect(namesOf(removed)).toEqual(rest);
    const next = await group.leader(`a new leader among ${rest.join(",")}`);
    expect(rest).toContain(next);
    const old = group.servers.get(leader)!;
    await waitFor(() => old.core === undefined, { timeoutMs: 10_000, message: `removed ${leader} to stop serving` });
    for (const n of rest) {
      await waitFor(async () => namesOf(await group.servers.get(n)!.getMembers()).join(",") === rest.join(","), {
        timeoutMs: 15_000,
        message: `${n}'s GetMembers to list ${rest.join(",")}`,
      });
    }
    const afterRemove = tso.stamps.length;
    await waitFor(() => tso.stamps.length > afterRemove + 20, {
      timeoutMs: 15_000,
      message: "timestamps to keep coming after the leader was removed",
    });
    await tso.stop();
    for (let i = 1; i < tso.stamps.length; i++)
      expect(tso.stamps[i]! > tso.stamps[i - 1]!, `timestamp ${i} after ${tso.stamps[i - 1]}`).toBe(true);

    // A restart with the old flags keeps the stored membership.
    const again = rest.find((n) => n !== next && n !== "s4")!;
    await group.stop(again);
    const restarted = await group.start(again, group.clusterOf(first));
    expect(namesOf(await restarted.getMembers())).toEqual(rest);
  });

  it("refuses a bad member add or remove, and a joiner that was never added", async () => {
    const group = await MemberGroup.create(4);
    cleanups.push(() => group.close());
    const first = ["s1", "s2", "s3"];
    await Promise.all(first.map((n) => group.start(n, group.clusterOf(first))));
    await group.leader();
    const client = await connect(group, first);
    await bootstrap(client);
    await expect(client.memberAdd("s9", "nowhere")).rejects.toThrow(/"nowhere" is not host:port/);
    await expect(client.memberAdd("s1", "127.0.0.1:1")).rejects.toThrow(/member s1 already exists/);
    await expect(client.memberAdd("s9", group.peerAddr("s2"))).rejects.toThrow(/is member s2's/);
    await expect(client.memberRemove("s9")).rejects.toThrow(/no member named "s9"/);
    await expect(group.start("s4", group.initialCluster, "existing")).rejects.toThrow(/has no member s4/);

    // A remove that is retried (its first answer lost) is answered as done.
    await client.memberRemove("s3");
    expect(namesOf(await client.memberRemove("s3"))).toEqual(["s1", "s2"]);

    // The same through tinykv-ctl.
    const lines: string[] = [];
    const ctx = {
      scheduler: group.addrs(["s1", "s2"]),
      timeoutMs: 15_000,
      out: (l: string) => lines.push(...l.split("\n")),
      kv: () => Promise.reject(new Error("not used")),
      status: undefined as never,
    };
    await ctlCommands.run(ctx, ["scheduler", "member", "list"], {});
    expect(lines[0]).toMatch(/^NAME\s+ID\s+PEER\s+CLIENT/);
    const rows = lines.filter((l) => /^s\d/.test(l));
    expect(rows.map((l) => l.split(/\s+/)[0]).sort()).toEqual(["s1", "s2"]);
    expect(rows.filter((l) => l.trimEnd().endsWith("leader"))).toHaveLength(1);
    await expect(ctlCommands.run(ctx, ["scheduler", "member", "add", "s9"], {})).rejects.toThrow(
      /usage: scheduler member add <name> <peer-addr>/,
    );
  });
});
