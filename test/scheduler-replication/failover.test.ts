// Clients of a replicated scheduler (in-process members over loopback gRPC): they find the leader
// from any member, fail over when it goes away, and never see a timestamp or an id twice; a
// partitioned leader stops serving timestamps.
import { credentials } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { TsoResponse } from "../../src/proto/schedulerpb.js";
import { ErrorType, SchedulerClient, TsoRequest } from "../../src/proto/schedulerpb.js";
import { SchedulerRpcClient } from "../../src/scheduler/client/client.js";
import { waitFor } from "../harness/wait.js";
import { MemberGroup } from "./members.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** One TsoRequest on a fresh stream straight to one member: its answer or its error. */
function rawTso(addr: string, clusterId: bigint): Promise<TsoResponse> {
  const c = new SchedulerClient(addr, credentials.createInsecure());
  return new Promise<TsoResponse>((resolve, reject) => {
    const stream = c.tso();
    stream.on("data", (r: TsoResponse) => {
      resolve(r);
      stream.cancel();
    });
    stream.on("error", reject);
    stream.write(TsoRequest.create({ header: { clusterId }, count: 1 }));
  }).finally(() => c.close());
}

describe("scheduler failover (in-process members over loopback gRPC)", () => {
  it("a client whose list starts with followers keeps getting unique timestamps and ids while the leader is stopped", async () => {
    const group = await MemberGroup.create(3);
    cleanups.push(() => group.close());
    await group.startAll();
    const leader = await group.leader();
    const others = group.names.filter((n) => n !== leader);
    const client = await SchedulerRpcClient.connect(group.addrs([...others, leader]), {
      connectDeadlineMs: 15_000,
      retryDeadlineMs: 10_000,
    });
    cleanups.push(() => client.close());
    await client.bootstrap({ id: 1n, address: "127.0.0.1:20160" });

    const stamps: bigint[] = [];
    const ids: bigint[] = [];
    let stop = false;
    let failure: unknown;
    const workload = (async () => {
      while (!stop) {
        stamps.push(await client.tso());
        ids.push(await client.allocId());
      }
    })().catch((err: unknown) => {
      failure = err;
    });
    cleanups.push(() => {
      stop = true;
      return workload;
    });
    await waitFor(() => stamps.length >= 20 || failure, {
      timeoutMs: 15_000,
      message: "20 timestamps before the failover",
    });
    const before = stamps.length;
    await group.stop(leader);
    const next = await group.leader("a new leader after the old one stopped");
    await waitFor(() => (stamps.length >= before + 20 && client.leaderAddr === group.addr(next)) || failure, {
      timeoutMs: 15_000,
      message: `the client to move to ${next} and get 20 more timestamps`,
    });
    stop = true;
    await workload;
    expect(failure, "the workload failed").toBeUndefined();

    for (let i = 1; i < stamps.length; i++)
      expect(stamps[i]! > stamps[i - 1]!, `timestamp ${i} after ${i - 1}`).toBe(true);
    expect(new Set(ids).size, "every id is new").toBe(ids.length);
  });

  it("a partitioned leader stops serving timestamps; the majority elects another that serves", async () => {
    const group = await MemberGroup.create(3);
    cleanups.push(() => group.close());
    await group.startAll();
    const leader = await group.leader();
    const client = await SchedulerRpcClient.connect(group.addrs(), {
      connectDeadlineMs: 15_000,
      retryDeadlineMs: 15_000,
    });
    cleanups.push(() => client.close());
    const clusterId = client.clusterId;
    const last = await client.tso();
    expect((await rawTso(group.addr(leader), clusterId)).header?.error).toBeUndefined();

    // Cut the leader off from both others, both ways.
    const old = group.servers.get(leader)!;
    for (const [name, s] of group.servers) {
      if (name === leader) {
        for (const m of group.names) if (m !== leader) old.transport.blocked.add(idOf(group, m));
      } else {
        s.transport.blocked.add(old.self.id);
      }
    }
    const refused = await waitFor(
      async () => {
        const r = await rawTso(group.addr(leader), clusterId);
        return r.header?.error?.type === ErrorType.NOT_LEADER ? r : undefined;
      },
      { timeoutMs: 15_000, message: `the partitioned leader ${leader} to refuse timestamps` },
    );
    expect(refused.timestamp?.physical ?? 0n).toBe(0n);
    const next = await waitFor(
      () => [...group.servers.entries()].find(([n, s]) => n !== leader && s.core !== undefined)?.[0],
      { timeoutMs: 10_000, message: "the majority to elect a new leader" },
    );
    const fresh = await client.tso();
    expect(fresh > last, "the new leader's timestamps are above the old one's").toBe(true);
    expect(client.leaderAddr).toBe(group.addr(next));
    // And the old one still refuses.
    expect((await rawTso(group.addr(leader), clusterId)).header?.error?.type).toBe(ErrorType.NOT_LEADER);
  });
});

function idOf(group: MemberGroup, name: string): bigint {
  return BigInt(group.names.indexOf(name) + 1);
}
