// A replicated scheduler in one process: three members over loopback gRPC. The leader's metadata
// writes reach every member; followers answer GetMembers and NOT_LEADER; a new leader takes over
// with ids and timestamps above everything the old one handed out.
import { credentials, Metadata } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { GetMembersResponse, IsBootstrappedResponse } from "../../src/proto/schedulerpb.js";
import { ErrorType, SchedulerClient } from "../../src/proto/schedulerpb.js";
import { SchedulerRpcClient } from "../../src/scheduler/client/client.js";
import { parseInitialCluster } from "../../src/scheduler/replication/members.js";
import { waitFor } from "../harness/wait.js";
import { MemberGroup } from "./members.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function raw(addr: string): SchedulerClient {
  const c = new SchedulerClient(addr, credentials.createInsecure());
  cleanups.push(() => c.close());
  return c;
}

function call<Resp>(fn: (md: Metadata, opts: object, cb: (err: Error | null, r: Resp) => void) => void): Promise<Resp> {
  return new Promise((resolve, reject) =>
    fn(new Metadata(), { deadline: new Date(Date.now() + 2000) }, (err, r) => (err ? reject(err) : resolve(r))),
  );
}

function maxOf(xs: bigint[]): bigint {
  return [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).at(-1)!;
}

describe("replicated scheduler (in-process members over loopback gRPC)", () => {
  it("elects a leader; followers name it; its writes reach every member; a new leader never repeats an id or a timestamp", async () => {
    const group = await MemberGroup.create(3);
    cleanups.push(() => group.close());
    await group.startAll();
    const leader = await group.leader();
    const followers = group.names.filter((n) => n !== leader);

    // A follower answers GetMembers with all three members and the leader's client URL.
    const members = await waitFor(
      async () => {
        const r = await call<GetMembersResponse>((md, o, cb) =>
          raw(group.addr(followers[0]!)).getMembers({}, md, o, cb),
        );
        return r.leader?.name === leader && r.members.every((m) => m.clientUrls.length === 1) ? r : undefined;
      },
      { timeoutMs: 15_000, message: `follower ${followers[0]} to report leader ${leader} and every client URL` },
    );
    expect(members.members.map((m) => m.name)).toEqual(["s1", "s2", "s3"]);
    expect(members.leader?.clientUrls).toEqual([`http://${group.addr(leader)}`]);

    // Any other rpc on a follower: NOT_LEADER, naming the leader once that follower has heard from
    // it (it may still say "knows no leader yet" just after the election).
    const notLeader = await waitFor(
      async () => {
        const r = await call<IsBootstrappedResponse>((md, o, cb) =>
          raw(group.addr(followers[1]!)).isBootstrapped(
            { header: { clusterId: members.header!.clusterId } },
            md,
            o,
            cb,
          ),
        );
        expect(r.header?.error?.type).toBe(ErrorType.NOT_LEADER);
        return r.header?.error?.message.includes(`member ${leader}`) ? r : undefined;
      },
      { timeoutMs: 15_000, message: `follower ${followers[1]} to answer NOT_LEADER naming ${leader}` },
    );
    expect(notLeader.header?.error?.message).toContain(`member ${leader}`);

    // Writes through the leader, then every member has them applied.
    const client = await SchedulerRpcClient.connect(group.addrs(followers.concat(leader)), {
      connectDeadlineMs: 15_000,
      retryDeadlineMs: 15_000,
    });
    cleanups.push(() => client.close());
    expect(client.leaderAddr).toBe(group.addr(leader));
    await client.bootstrap({ id: 1n, address: "127.0.0.1:20160" });
    await client.putStore({ id: 2n, address: "127.0.0.1:20161" });
    const ids: bigint[] = [];
    const stamps: bigint[] = [];
    for (let i = 0; i < 20; i++) {
      ids.push(await client.allocId());
      stamps.push(await client.tso());
    }
    const clusterId = client.clusterId;
    client.close();
    for (const name of group.names) {
      const s = group.servers.get(name)!;
      await waitFor(async () => (await s.knownClusterId()) === clusterId, {
        timeoutMs: 15_000,
        message: `member ${name} to apply the cluster id`,
      });
    }

    // The leader goes away: one of the others takes over and hands out only new ids and timestamps.
    await group.stop(leader);
    const next = await group.leader(`a new leader among ${followers.join(",")}`);
    expect(followers).toContain(next);
    const after = await SchedulerRpcClient.connect(group.addrs(followers), {
      connectDeadlineMs: 15_000,
      retryDeadlineMs: 15_000,
    });
    cleanups.push(() => after.close());
    expect(after.clusterId).toBe(clusterId);
    const stores = await after.getAllStores();
    expect(stores.map((s) => s.id).sort()).toEqual([1n, 2n]);
    const newId = await after.allocId();
    const newTs = await after.tso();
    expect(newId > maxOf(ids)).toBe(true);
    expect(newTs > maxOf(stamps)).toBe(true);
  });

  it("a whole group restarted from its data dirs keeps the cluster, its stores and its marks", async () => {
    const group = await MemberGroup.create(3);
    cleanups.push(() => group.close());
    await group.startAll();
    await group.leader();
    const client = await SchedulerRpcClient.connect(group.addrs(), {
      connectDeadlineMs: 15_000,
      retryDeadlineMs: 15_000,
    });
    await client.bootstrap({ id: 1n, address: "127.0.0.1:20160" });
    const lastId = await client.allocId();
    const lastTs = await client.tso();
    const clusterId = client.clusterId;
    client.close();
    for (const n of group.names) await group.stop(n);

    await group.startAll();
    await group.leader("a leader after restarting every member");
    const again = await SchedulerRpcClient.connect(group.addrs(), {
      connectDeadlineMs: 15_000,
      retryDeadlineMs: 15_000,
    });
    cleanups.push(() => again.close());
    expect(again.clusterId).toBe(clusterId);
    expect(await again.isBootstrapped()).toBe(true);
    expect((await again.getAllStores()).map((s) => s.address)).toEqual(["127.0.0.1:20160"]);
    expect((await again.allocId()) > lastId).toBe(true);
    expect((await again.tso()) > lastTs).toBe(true);
  });

  it("a group of one member serves on its own", async () => {
    const group = await MemberGroup.create(1);
    cleanups.push(() => group.close());
    await group.startAll();
    await group.leader();
    const client = await SchedulerRpcClient.connect(group.addrs(), {
      connectDeadlineMs: 15_000,
      retryDeadlineMs: 15_000,
    });
    cleanups.push(() => client.close());
    await client.bootstrap({ id: 1n, address: "127.0.0.1:20160" });
    const a = await client.tso();
    expect((await client.tso()) > a).toBe(true);
  });

  it("--initial-cluster is checked at the door; members of different lists refuse each other", async () => {
    expect(parseInitialCluster("s1=127.0.0.1:2380, s2=http://127.0.0.1:2390")).toEqual([
      { id: 1n, name: "s1", peerAddr: "127.0.0.1:2380" },
      { id: 2n, name: "s2", peerAddr: "127.0.0.1:2390" },
    ]);
    for (const [bad, why] of [
      ["", /no member given/],
      ["s1", /want name=host:port/],
      ["s1=nowhere", /"nowhere" is not host:port/],
      ["s1=127.0.0.1:2380,s1=127.0.0.1:2382", /member s1 is named twice/],
      ["s1=127.0.0.1:2380,s2=127.0.0.1:2380", /peer address 127.0.0.1:2380 is named twice/],
    ] as const) {
      expect(() => parseInitialCluster(bad), bad).toThrow(why);
    }

    // s1 told only of s1 and s2, s2 told of all three: without the check they would make a quorum
    // of each other's lists (2 of 2, 2 of 3) and elect a leader. With it, each refuses the other.
    const group = await MemberGroup.create(3);
    cleanups.push(() => group.close());
    await group.start("s1", group.initialCluster.split(",").slice(0, 2).join(","));
    await group.start("s2");
    await new Promise((r) => setTimeout(r, 1500));
    for (const name of ["s1", "s2"]) {
      const m = group.servers.get(name)!;
      expect(m.core, `${name} serves`).toBeUndefined();
      expect((await m.getMembers()).leader, `${name} names a leader`).toBeUndefined();
    }
  });
});
