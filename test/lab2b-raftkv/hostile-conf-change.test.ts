// (Found by an independent review; this test failed before the fix.)
// a committed conf-change entry whose ConfChange.change_type is not one raft knows
// (the context's ChangePeer says AddNode) passes apply's decode and epoch checks, changes the
// region's peers, and then RawNode.applyConfChange throws ErrInvalidConfig inside applyEntries:
// the store loop's turn rejects and every store that applies the entry stops itself (and would
// again at each restart, as the entry is re-applied from the log). Expected: refused on every
// replica alike, as apply.ts does for other malformed entries since de88a20.
import { afterEach, describe, expect, it } from "vitest";
import { TestCluster } from "../harness/cluster.js";
import { AdminCmdType, RaftCmdRequest } from "../../src/proto/raft_cmdpb.js";
import { ConfChangeType } from "../../src/raft/eraftpb.js";

describe("a conf-change entry with an unknown change type", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("does not stop the stores", async () => {
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
    const region = cluster.regionFor(Buffer.from("a"))!;
    const leader = cluster.leaderOf(region.id)!;
    const peer = cluster.store(leader)!.peers.get(region.id)!;
    const context = Buffer.from(
      RaftCmdRequest.encode(
        RaftCmdRequest.fromPartial({
          header: { regionId: region.id, regionEpoch: region.regionEpoch },
          adminRequest: {
            cmdType: AdminCmdType.ChangePeer,
            changePeer: { changeType: ConfChangeType.AddNode, peer: { id: 1000n, storeId: 9n } },
          },
        }),
      ).finish(),
    );
    peer.raw.proposeConfChange({ changeType: 7 as ConfChangeType, nodeId: 1000n, context });
    await cluster
      .onLeader(
        Buffer.from("z"),
        "put z",
        async (s, ctx) =>
          s.write(ctx, [{ kind: "put", cf: "default", key: Buffer.from("z"), value: Buffer.from("1") }]),
        3000,
      )
      .catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500));
    expect(fatal, `stores that stopped themselves (${why[0]})`).toEqual([]);
  }, 30_000);
});
