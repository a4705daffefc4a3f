/**
 * In a 2-peer region the peer being removed can become leader before the removal applies (here:
 * the leader that proposed it restarts and the other peer wins the election). It then commits and
 * applies its own removal. If it destroyed itself at once and the one message carrying the new
 * commit index were lost, the survivor would wait forever for the vote of a peer that is gone.
 * The retiring peer keeps its vote until the survivor learns the removal committed, across a
 * restart of its store too: the survivor still counts it as a voter.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ConfChangeType, MessageType } from "../../src/raft/eraftpb.js";
import { AdminCmdType, RaftCmdRequest } from "../../src/proto/raft_cmdpb.js";
import { dropWhere } from "../../src/kv/transport/index.js";
import { TestCluster } from "../harness/cluster.js";
import { transferLeader } from "../harness/generic.js";
import { waitFor } from "../harness/wait.js";

describe("removing a peer of a 2-peer region", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  /** Store 1 proposes removing peer 2 and never hears peer 2 append it; only peer 2 can win the next election. */
  async function removalAppendedEverywhere(): Promise<{
    c: TestCluster;
    removal: Promise<unknown>;
    removalIndex: bigint;
    noAcks: () => void;
    noVotesFrom1: () => void;
  }> {
    const c = (cluster = new TestCluster({ stores: 2 }));
    await c.start();
    await c.put("k", "v");
    await transferLeader(c, 1n, 1n);
    const store1 = c.store(1n)!;
    const peer1 = store1.peers.get(1n)!;
    const noAcks = c.network.addFilter(
      dropWhere(
        (env) => env.from === 2n && env.to === 1n && env.msg.message?.msgType === MessageType.MsgAppendResponse,
      ),
    );
    const noVotesFrom1 = c.network.addFilter(
      dropWhere(
        (env) =>
          env.from === 1n &&
          (env.msg.message?.msgType === MessageType.MsgRequestVote ||
            env.msg.message?.msgType === MessageType.MsgRequestPreVote),
      ),
    );
    const removal = store1.propose(
      RaftCmdRequest.fromPartial({
        header: { regionId: 1n, peer: peer1.meta, regionEpoch: peer1.region.regionEpoch },
        adminRequest: {
          cmdType: AdminCmdType.ChangePeer,
          changePeer: { changeType: ConfChangeType.RemoveNode, peer: { id: 2n, storeId: 2n } },
        },
      }),
    );
    const removalIndex = await waitFor(
      () => (peer1.storage.lastIndex() > peer1.storage.appliedIndex ? peer1.storage.lastIndex() : undefined),
      { timeoutMs: 5_000, message: "store 1 appended the removal" },
    );
    await waitFor(() => (c.store(2n)!.peers.get(1n)?.storage.lastIndex() ?? 0n) >= removalIndex, {
      timeoutMs: 5_000,
      message: "peer 2 appended the removal",
    });
    return { c, removal, removalIndex, noAcks, noVotesFrom1 };
  }

  /** Drops peer 2's messages to store 1 that carry a commit index covering the removal, while `active()`. */
  function dropCommitTo1(c: TestCluster, removalIndex: bigint, active: () => boolean): void {
    c.network.addFilter(
      dropWhere((env) => {
        const m = env.msg.message;
        const carriesCommit =
          env.from === 2n &&
          env.to === 1n &&
          (m?.msgType === MessageType.MsgAppend || m?.msgType === MessageType.MsgHeartbeat) &&
          m.commit >= removalIndex;
        return carriesCommit && active();
      }),
    );
  }

  async function restartStore1(c: TestCluster, removal: Promise<unknown>, noAcks: () => void): Promise<void> {
    await c.stopStore(1n);
    await removal.catch(() => undefined); // answered StaleCommand by the stop: its outcome is unknown
    noAcks();
    await c.startStore(1n);
  }

  async function survivorServes(c: TestCluster): Promise<void> {
    await waitFor(() => !c.store(2n)!.peers.has(1n), {
      timeoutMs: 15_000,
      get message() {
        return `peer 2 never left region 1\n${c.dump()}`;
      },
    });
    await waitFor(() => c.store(1n)!.peers.get(1n)?.isLeader(), {
      timeoutMs: 15_000,
      get message() {
        return `the survivor on store 1 never became leader\n${c.dump()}`;
      },
    });
    await c.put("k2", "v2");
    expect((await c.get("k2"))?.toString()).toBe("v2");
  }

  it("the survivor elects itself even when the removed peer led when the removal applied and its first commit messages were lost", async () => {
    const { c, removal, removalIndex, noAcks, noVotesFrom1 } = await removalAppendedEverywhere();
    let lost = 0;
    dropCommitTo1(c, removalIndex, () => lost++ < 5); // the first five are lost
    await restartStore1(c, removal, noAcks);
    await waitFor(() => c.store(2n)!.peers.get(1n)?.retiring, {
      timeoutMs: 10_000,
      message: "peer 2 applied its own removal as leader",
    });
    noVotesFrom1();
    await survivorServes(c);
    expect(lost, "the scenario dropped the first commit messages").toBeGreaterThan(0);
  });

  it("the survivor elects itself after a partition that outlasts the removed leader's leadership", async () => {
    const { c, removal, removalIndex, noAcks, noVotesFrom1 } = await removalAppendedEverywhere();
    let partitioned = true;
    dropCommitTo1(c, removalIndex, () => partitioned);
    await restartStore1(c, removal, noAcks);
    const peer2 = () => c.store(2n)!.peers.get(1n);
    await waitFor(() => peer2()?.retiring, { timeoutMs: 10_000, message: "peer 2 applied its own removal as leader" });
    await waitFor(() => !peer2()?.isLeader(), {
      timeoutMs: 10_000,
      message: "check-quorum made the retiring peer 2 step down",
    });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(
      peer2(),
      "a retiring peer stays (and keeps its vote) until a survivor tells it the removal applied",
    ).toBeDefined();
    partitioned = false;
    noVotesFrom1();
    await survivorServes(c);
  });

  it("the survivor is elected after the retiring peer's store restarts", async () => {
    const { c, removal, removalIndex, noAcks, noVotesFrom1 } = await removalAppendedEverywhere();
    let partitioned = true;
    dropCommitTo1(c, removalIndex, () => partitioned);
    await restartStore1(c, removal, noAcks);
    await waitFor(() => c.store(2n)!.peers.get(1n)?.retiring, {
      timeoutMs: 10_000,
      message: "peer 2 applied its own removal as leader",
    });
    await c.stopStore(2n);
    await c.startStore(2n);
    partitioned = false;
    noVotesFrom1();
    await survivorServes(c);
  });
});
