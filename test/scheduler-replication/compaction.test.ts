// Log compaction of the replicated scheduler: members snapshot their applied metadata every few
// entries and truncate the raft log, a restart recovers the same metadata from snapshot + log,
// and a member whose disk was wiped catches up from the leader's snapshot.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import { afterEach, describe, expect, it } from "vitest";
import type { SchedulerRpcClient } from "../../src/scheduler/client/client.js";
import type { ReplicatedSchedulerServer } from "../../src/scheduler/replication/replicated-server.js";
import { waitFor } from "../harness/wait.js";
import { bootstrap, connectClient, MemberGroup } from "./members.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Small, so a few dozen writes take several snapshots. */
const COMPACTION = { snapshotCount: 20, catchupEntries: 5 };

function connect(group: MemberGroup, names = group.names): Promise<SchedulerRpcClient> {
  return connectClient(group, names, cleanups);
}

/** Writes `count` stores (one metadata write, so one raft entry, each) with ids from `firstId`. */
async function putStores(client: SchedulerRpcClient, firstId: number, count: number): Promise<void> {
  for (let id = firstId; id < firstId + count; id++)
    await client.putStore({ id: BigInt(id), address: `127.0.0.1:${20000 + id}` });
}

function logEntriesKept(s: ReplicatedSchedulerServer): number {
  return Number(s.storage.lastIndex() - s.storage.firstIndex() + 1n);
}

async function logKeysOnDisk(dataDir: string): Promise<number> {
  const db = new ClassicLevel<string, Buffer>(join(dataDir, "member"), { valueEncoding: "buffer" });
  try {
    return (await db.keys({ gte: "raft/log/", lt: "raft/log/\xff" }).all()).length;
  } finally {
    await db.close();
  }
}

/**
 * A digest of a member's applied metadata (its size in front, for a readable failure). The id and
 * TSO high-water marks are left out: a leader raises them when it takes over.
 */
async function metadataOf(s: ReplicatedSchedulerServer): Promise<string> {
  const kvs = (await s.storage.scanPrefix("")).filter(([k]) => k !== "meta/tso" && k !== "meta/alloc_id");
  const digest = createHash("sha256");
  for (const [k, v] of kvs) digest.update(`${k}=${v.toString("hex")};`);
  return `${kvs.length} keys, sha256 ${digest.digest("hex").slice(0, 16)}`;
}

describe("replicated scheduler log compaction", () => {
  it("keeps the raft log bounded over many writes, and a restart recovers the same metadata", async () => {
    const group = await MemberGroup.create(1, undefined, COMPACTION);
    cleanups.push(() => group.close());
    await group.startAll();
    await group.leader();
    const client = await connect(group);
    await bootstrap(client);
    await putStores(client, 2, 199);
    const member = group.servers.get("s1")!;
    // One snapshot every 20 applied entries, 5 kept before it: never more than 20 + 5 entries.
    expect(member.storage.lastIndex()).toBeGreaterThan(200n);
    expect(logEntriesKept(member)).toBeLessThanOrEqual(COMPACTION.snapshotCount + COMPACTION.catchupEntries);
    const before = await metadataOf(member);
    const lastTs = await client.tso();
    client.close();

    await group.stop("s1");
    expect(await logKeysOnDisk(group.dataDir("s1"))).toBeLessThanOrEqual(
      COMPACTION.snapshotCount + COMPACTION.catchupEntries,
    );
    const restarted = await group.start("s1");
    expect(await metadataOf(restarted)).toBe(before);
    await group.leader("the member to serve again after its restart");
    const again = await connect(group);
    const stores = await again.getAllStores();
    expect(stores.length).toBe(200);
    expect(stores.find((s) => s.id === 200n)?.address).toBe("127.0.0.1:20200");
    expect((await again.tso()) > lastTs).toBe(true);
  });

  it("a member whose data dir was wiped catches up by the leader's snapshot and serves it", async () => {
    const group = await MemberGroup.create(3, undefined, COMPACTION);
    cleanups.push(() => group.close());
    await group.startAll();
    const leader = await group.leader();
    const client = await connect(group);
    await bootstrap(client);
    const wiped = group.names.find((n) => n !== leader)!;
    await group.wipe(wiped);

    // The two others go on; the leader's log is truncated past anything the wiped member has.
    await putStores(client, 2, 49);
    const leaderServer = group.servers.get(leader)!;
    expect(leaderServer.storage.firstIndex()).toBeGreaterThan(1n);
    const restarted = await group.start(wiped);
    await waitFor(
      async () =>
        restarted.storage.snapshot().metadata!.index > 0n &&
        (await metadataOf(restarted)) === (await metadataOf(leaderServer)),
      { timeoutMs: 15_000, message: `wiped member ${wiped} to install a snapshot and hold the leader's metadata` },
    );
    // Only what came after the snapshot was replayed from the log.
    expect(restarted.storage.firstIndex()).toBeGreaterThan(1n);
    // What it installed is on its disk: a restart reads back the same metadata.
    const installed = await metadataOf(restarted);
    await group.stop(wiped);
    const twice = await group.start(wiped);
    expect(await metadataOf(twice)).toBe(installed);
    const lastTs = await client.tso();
    client.close();

    // With the old leader gone, the wiped member is needed for a quorum: the group serves the
    // metadata it had before, so the snapshot it installed counts.
    await group.stop(leader);
    const next = await group.leader(`a new leader among the two left (one of them ${wiped})`);
    expect(next).not.toBe(leader);
    const after = await connect(
      group,
      group.names.filter((n) => n !== leader),
    );
    expect((await after.getAllStores()).length).toBe(50);
    expect((await after.tso()) > lastTs).toBe(true);
    await putStores(after, 100, 3);
    expect((await after.getAllStores()).length).toBe(53);
  });
});
