/**
 * An uninitialized peer (created by a vote request, waiting for a snapshot) keeps its term and
 * vote across a restart: otherwise it could vote twice in one term, and two leaders of one term
 * could commit different entries.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Message } from "../../src/raft/index.js";
import { MessageType } from "../../src/raft/index.js";
import type { RaftMessage } from "../../src/proto/raft_serverpb.js";
import { TestCluster } from "../harness/cluster.js";
import { waitFor } from "../harness/wait.js";

const REGION = 99n;
const LOCAL_PEER = 104n;

function voteRequest(candidate: { id: bigint; storeId: bigint }, term: bigint): RaftMessage {
  const message: Message = {
    msgType: MessageType.MsgRequestVote,
    to: LOCAL_PEER,
    from: candidate.id,
    term,
    logTerm: 5n,
    index: 5n,
    entries: [],
    commit: 0n,
    snapshot: undefined,
    reject: false,
    context: Buffer.alloc(0),
    rejectHint: 0n,
  } as Message;
  return {
    regionId: REGION,
    fromPeer: candidate,
    toPeer: { id: LOCAL_PEER, storeId: 4n },
    message,
    regionEpoch: { confVer: 1n, version: 1n },
    isTombstone: false,
    startKey: Buffer.alloc(0),
    endKey: Buffer.alloc(0),
  };
}

describe("uninitialized peers across restarts", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("a vote given in term 7 is remembered: a second candidate of term 7 is rejected after a restart", async () => {
    const c = (cluster = new TestCluster({ stores: 4, regionStores: 3 }));
    await c.start();
    const responses: Message[] = [];
    c.network.addFilter((env) => {
      if (env.msg.regionId === REGION && env.msg.message?.msgType === MessageType.MsgRequestVoteResponse)
        responses.push(env.msg.message);
      return false; // nobody hosts region 99: keep the answers to ourselves
    });

    c.store(4n)!.onRaftMessage(voteRequest({ id: 201n, storeId: 2n }, 7n));
    const first = await waitFor(() => responses.find((m) => m.to === 201n), {
      timeoutMs: 5_000,
      message: "store 4 answered the first vote request",
    });
    expect(first.reject, "the first candidate of term 7 gets the vote").toBe(false);

    await c.stopStore(4n);
    await c.startStore(4n);
    // A peer created within an election timeout of its store's start holds its vote (it may have
    // acknowledged a leader's lease before the restart): the candidate asks again, as its next
    // election timeout would, until it gets an answer.
    const second = await waitFor(
      () => {
        const answer = responses.find((m) => m.to === 301n);
        if (!answer) c.store(4n)!.onRaftMessage(voteRequest({ id: 301n, storeId: 3n }, 7n));
        return answer;
      },
      {
        intervalMs: 50,
        timeoutMs: 5_000,
        message: "store 4 answered the second vote request",
      },
    );
    expect(second.term).toBe(7n);
    expect(second.reject, "a second vote in term 7 must be refused").toBe(true);
  });
});
