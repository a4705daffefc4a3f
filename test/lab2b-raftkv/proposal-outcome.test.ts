/**
 * A proposal's answer tells the truth about its outcome: applied, never proposed (NotLeader: safe
 * to retry), or unknown (StaleCommand). A proposal whose entry is in the log is never answered
 * NotLeader or "failed": the entry may still commit under the next leader, and a client that
 * retried a NotLeader write would apply it twice.
 */
import { afterEach, describe, expect, it } from "vitest";
import { RaftStorage, RegionError } from "../../src/kv/storage/index.js";
import { CF_DEFAULT } from "../../src/kv/engine/index.js";
import { MessageType } from "../../src/raft/index.js";
import type { Context } from "../../src/proto/kvrpcpb.js";
import { dropWhere, isolate } from "../../src/kv/transport/index.js";
import { TestCluster } from "../harness/cluster.js";
import { waitFor } from "../harness/wait.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function settle(p: Promise<void>): Promise<RegionError | "ok" | Error> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return err instanceof RegionError ? err : (err as Error);
  }
}

describe("proposal outcomes", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  async function leaderWithUnreplicatedPut(
    key: string,
  ): Promise<{ c: TestCluster; leaderId: bigint; write: Promise<void>; answered: () => boolean }> {
    const c = (cluster = new TestCluster({ stores: 3, config: { requestTimeoutMs: 200 } }));
    await c.start();
    await c.put("warm-up", "1");
    const leaderId = await waitFor(() => c.leaderOf(1n), { timeoutMs: 5_000, message: "region 1 has a leader" });
    c.network.addFilter(
      dropWhere((env) => env.from === leaderId && env.msg.message?.msgType === MessageType.MsgAppend),
    );
    const store = c.store(leaderId)!;
    const region = c.regionFor(Buffer.from(key))!;
    const ctx: Context = {
      regionId: region.id,
      regionEpoch: region.regionEpoch,
      peer: store.peerMeta(region.id),
      term: 0n,
    };
    let done = false;
    const write = new RaftStorage(store)
      .write(ctx, [{ kind: "put", cf: CF_DEFAULT, key: Buffer.from(key), value: Buffer.from("x") }])
      .finally(() => (done = true));
    write.catch(() => undefined); // observed through settle() below
    return { c, leaderId, write, answered: () => done };
  }

  it("a leader that steps down with the proposal in its log answers StaleCommand, not NotLeader", async () => {
    const { c, leaderId, write, answered } = await leaderWithUnreplicatedPut("k-stepdown");
    await sleep(800); // several server-side request timeouts: still unanswered
    expect(answered(), "an uncommitted proposal in the log is not answered by a timeout").toBe(false);
    c.network.addFilter(isolate(leaderId)); // check-quorum makes it step down
    const outcome = await settle(write);
    expect(outcome).toBeInstanceOf(RegionError);
    const pb = (outcome as RegionError).pb;
    expect(pb.notLeader, `answered ${pb.message}`).toBeUndefined();
    expect(pb.staleCommand, `answered ${pb.message}`).toBeDefined();
  });

  it("a store that stops with the proposal in its log answers StaleCommand", async () => {
    const { c, leaderId, write } = await leaderWithUnreplicatedPut("k-stop");
    await sleep(100);
    await c.stopStore(leaderId);
    const outcome = await settle(write);
    expect(outcome).toBeInstanceOf(RegionError);
    expect((outcome as RegionError).pb.staleCommand, (outcome as RegionError).pb.message).toBeDefined();
  });
});
