// A committed entry whose bytes apply cannot handle must be refused on every replica alike, not
// stop the stores (and again at each restart, as the entry is re-applied from the log: a poison
// pill for the region). Found by an independent review; both cases failed then: RaftCmdRequest
// .decode threw in apply, or the wire-tag walk (which stopped at a group field) and the decoder
// disagreed, so the turn listed no keys for a DeleteRange and apply threw.
//
// The entries are proposed straight into the leader's raft node (what a buggy or hostile peer,
// or a corrupt raft log, hands to apply); the server's own encoder never writes such bytes.
import { afterEach, describe, expect, it } from "vitest";
import { CmdType, DeleteRangeRequest, RaftCmdRequest } from "../../src/proto/raft_cmdpb.js";
import { RAW_CF_DEFAULT } from "../../src/kv/engine/index.js";
import { TestCluster } from "../harness/cluster.js";
import type { Entry } from "../../src/raft/eraftpb.js";
import { EntryType } from "../../src/raft/eraftpb.js";
import { mayHoldRangeDelete } from "../../src/kv/raftstore/delete-range.js";

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/** A RaftCmdRequest the decoder accepts: one DeleteRange request with an empty group field (15) before delete_range. */
function deleteRangeWithGroup(c: TestCluster): Buffer {
  const region = c.regionFor(Buffer.from("a"))!;
  const header = Buffer.from(
    RaftCmdRequest.encode(
      RaftCmdRequest.fromPartial({ header: { regionId: region.id, regionEpoch: region.regionEpoch } }),
    ).finish(),
  );
  const dr = Buffer.from(
    DeleteRangeRequest.encode({
      cf: RAW_CF_DEFAULT,
      startKey: Buffer.from("a"),
      endKey: Buffer.from("b"),
      notifyOnly: false,
    } as DeleteRangeRequest).finish(),
  );
  const request = Buffer.concat([
    Buffer.from([0x08, CmdType.DeleteRange]), // cmd_type = DeleteRange
    Buffer.from([(15 << 3) | 3, (15 << 3) | 4]), // field 15: start group, end group (skipped by the decoder)
    Buffer.from([(8 << 3) | 2]), // delete_range
    varint(dr.length),
    dr,
  ]);
  return Buffer.concat([header, Buffer.from([(2 << 3) | 2]), varint(request.length), request]);
}

async function runningAfter(c: TestCluster, data: (c: TestCluster) => Buffer): Promise<bigint[]> {
  await c.put("a0", "v");
  const leader = c.leaderOf(1n)!;
  const peer = c.store(leader)!.peers.get(1n)!;
  peer.raw.propose(data(c));
  // A write after it wakes the loop; it may never be answered if the stores stop.
  await c
    .onLeader(
      Buffer.from("z"),
      "put z",
      async (s, ctx) => s.write(ctx, [{ kind: "put", cf: "default", key: Buffer.from("z"), value: Buffer.from("1") }]),
      3000,
    )
    .catch(() => undefined);
  await new Promise((r) => setTimeout(r, 500));
  return c.storeIds.filter((id) => c.store(id) !== undefined);
}

describe("a malformed committed entry", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("that the decoder rejects does not stop the stores", async () => {
    const fatal: bigint[] = [];
    const why: string[] = [];
    cluster = new TestCluster({
      stores: 3,
      onStoreFatal: (id, err) => {
        fatal.push(id);
        why.push(String(err));
      },
    });
    await cluster.start();
    const running = await runningAfter(cluster, () => Buffer.from([0x0a, 0xff, 0x01]));
    expect(fatal, `stores that stopped themselves (${why[0]})`).toEqual([]);
    expect(running).toEqual([1n, 2n, 3n]);
  }, 30_000);

  it("that the wire-tag walk misreads (a group field before delete_range) does not stop the stores", async () => {
    const fatal: bigint[] = [];
    const why: string[] = [];
    cluster = new TestCluster({
      stores: 3,
      onStoreFatal: (id, err) => {
        fatal.push(id);
        why.push(String(err));
      },
    });
    await cluster.start();
    await cluster.put("a0", "v");
    const bytes = deleteRangeWithGroup(cluster);
    // The decoder takes it as a DeleteRange; the walk cannot read the group, so it answers "maybe".
    const decoded = RaftCmdRequest.decode(bytes);
    expect(decoded.requests[0]?.deleteRange?.cf).toBe(RAW_CF_DEFAULT);
    const entry = {
      entryType: EntryType.EntryNormal,
      term: 1n,
      index: 10n,
      data: bytes,
      context: Buffer.alloc(0),
    } as Entry;
    expect(mayHoldRangeDelete([entry], 0n)).toBe(true);
    const running = await runningAfter(cluster, () => bytes);
    expect(fatal, `stores that stopped themselves (${why[0]})`).toEqual([]);
    expect(running).toEqual([1n, 2n, 3n]);
  }, 30_000);
});
