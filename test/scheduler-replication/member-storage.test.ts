// A member's storage installs a leader's snapshot all at once: after a failed install the old
// state is there whole, after a good one only the snapshot's (as a restart reads them back).
import { afterEach, describe, expect, it } from "vitest";
import { MemberSnapshotData } from "../../src/proto/schedulerraftpb.js";
import type { Membership } from "../../src/proto/schedulerraftpb.js";
import type { Snapshot } from "../../src/raft/index.js";
import { MemberStorage } from "../../src/scheduler/replication/member-storage.js";
import { tempDir } from "../harness/wait.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const MEMBERS: Membership = {
  clusterToken: "t0k3n",
  members: [1n, 2n, 3n].map((id) => ({ id, name: `s${id}`, peerAddr: `127.0.0.1:${2380 + Number(id)}` })),
  nextMemberId: 4n,
  removed: [],
};

async function open(dir: string): Promise<MemberStorage> {
  const s = await MemberStorage.open(dir);
  cleanups.push(() => s.close().catch(() => undefined));
  return s;
}

/** A member that applied entries 1..3 (three puts) of term 1. */
async function memberWithLog(dir: string): Promise<MemberStorage> {
  const s = await open(dir);
  await s.bootstrapMembership(MEMBERS);
  const entries = [1n, 2n, 3n].map((index) => ({ entryType: 0, term: 1n, index, data: Buffer.alloc(0) }));
  await s.persist({
    entries,
    hardState: { term: 1n, vote: 1n, commit: 3n },
    applied: [1, 2, 3].map((i) => ({
      puts: [{ key: `old/${i}`, value: Buffer.from(`v${i}`) }],
      deletes: [],
      barrier: false,
    })),
    appliedIndex: 3n,
    sync: true,
  });
  return s;
}

function snapshotAt(index: bigint, data: Buffer): Snapshot {
  return { data, metadata: { index, term: 2n, confState: { nodes: [1n, 2n, 3n] } } };
}

async function keys(s: MemberStorage): Promise<string[]> {
  return (await s.scanPrefix("")).map(([k]) => k);
}

describe("member storage: installing a snapshot", () => {
  it("leaves the old state whole when the install fails, and only the snapshot's after it succeeds", async () => {
    const dir = tempDir("member-storage-");
    cleanups.push(dir.cleanup);
    const s = await memberWithLog(dir.path);

    // A snapshot without a membership is refused before anything is written.
    const broken = snapshotAt(50n, Buffer.from(MemberSnapshotData.encode({ kvs: [] }).finish()));
    await expect(s.persist({ snapshot: broken, entries: [], applied: [], sync: true })).rejects.toThrow(
      /no membership/,
    );
    await s.close();
    const afterFailure = await open(dir.path);
    expect(await keys(afterFailure)).toEqual(["old/1", "old/2", "old/3"]);
    expect(afterFailure.applied).toBe(3n);
    expect([afterFailure.firstIndex(), afterFailure.lastIndex()]).toEqual([1n, 3n]);

    const data = MemberSnapshotData.encode({
      membership: { ...MEMBERS, nextMemberId: 5n },
      kvs: [{ key: "new/a", value: Buffer.from("A") }],
    }).finish();
    await afterFailure.persist({
      snapshot: snapshotAt(50n, Buffer.from(data)),
      entries: [],
      hardState: { term: 2n, vote: 0n, commit: 50n },
      applied: [],
      sync: true,
    });
    await afterFailure.close();
    const installed = await open(dir.path);
    expect(await keys(installed)).toEqual(["new/a"]);
    expect((await installed.get("new/a"))?.toString()).toBe("A");
    expect(installed.applied).toBe(50n);
    expect([installed.firstIndex(), installed.lastIndex()]).toEqual([51n, 50n]);
    expect(installed.term(50n)).toBe(2n);
    expect(installed.snapshot().metadata?.index).toBe(50n);
    expect(installed.membership?.nextMemberId).toBe(5n);
    expect(installed.initialState().confState.nodes).toEqual([1n, 2n, 3n]);
  });
});
