// A raw write whose outcome the client cannot know (StaleCommand: the command is in a raft log
// and may still commit; no answer before the rpc deadline) must not be sent again: a late copy
// of it could apply after a newer write and undo it. The client says "outcome unknown" instead.
// Scheduler and store are fakes behind the client's injection points, so no process runs.
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import type { KvConnection } from "../../src/client/index.js";
import { KvClient, KvOutcomeUnknownError } from "../../src/client/index.js";
import * as kv from "../../src/proto/kvrpcpb.js";
import { fakeConnection, oneRegionScheduler, wholeRegion } from "./fake-scheduler.js";

const REGION = wholeRegion([1n, 2n]);

type Answer = "stale-command" | "deadline" | "not-leader" | "unavailable" | "ok";

/** Stores that answer each raw write with the next scripted answer, counting what reached them. */
function scriptedStores(answers: Answer[]) {
  const writes: string[] = [];
  const connect = (addr: string): KvConnection => {
    const write = async <R>(what: string, create: (base: object) => R): Promise<R> => {
      const answer = answers.shift() ?? "ok";
      if (answer === "unavailable")
        throw Object.assign(new Error("connection refused"), {
          code: status.UNAVAILABLE,
          details: "connection refused",
        });
      writes.push(`${what}@${addr}`);
      if (answer === "deadline")
        throw Object.assign(new Error("deadline exceeded"), {
          code: status.DEADLINE_EXCEEDED,
          details: "deadline exceeded",
        });
      if (answer === "stale-command") return create({ regionError: { message: "stale command", staleCommand: {} } });
      if (answer === "not-leader")
        return create({ regionError: { message: "not leader", notLeader: { regionId: 1n, leader: REGION.peers[1] } } });
      return create({});
    };
    return fakeConnection(addr, {
      rawPut: () => write("put", (b) => kv.RawPutResponse.fromPartial(b)),
      rawDelete: () => write("delete", (b) => kv.RawDeleteResponse.fromPartial(b)),
    });
  };
  const client = KvClient.withScheduler(
    oneRegionScheduler(REGION, (id) => `store${id}`),
    {
      connectKv: connect,
      timeoutMs: 2_000,
      backoff: { initialMs: 1, maxMs: 5 },
    },
  );
  return { client, writes };
}

describe("client: raw writes of unknown outcome are not sent twice", () => {
  for (const answer of ["stale-command", "deadline"] as const) {
    it(`a put answered ${answer} fails as outcome unknown, sent once`, async () => {
      const { client, writes } = scriptedStores([answer, "ok"]);
      const err = await client.put("k", "v").catch((e: unknown) => e);
      expect(err, `put after ${answer} should fail as outcome unknown; stores saw ${writes.join(", ")}`).toBeInstanceOf(
        KvOutcomeUnknownError,
      );
      expect(writes).toEqual(["put@store1"]);
      client.close();
    });
  }

  it("a delete answered stale-command fails as outcome unknown, sent once", async () => {
    const { client, writes } = scriptedStores(["stale-command", "ok"]);
    await expect(client.delete("k")).rejects.toBeInstanceOf(KvOutcomeUnknownError);
    expect(writes).toEqual(["delete@store1"]);
    client.close();
  });

  it("a put that surely did not apply (not leader, store unreachable) is retried and succeeds", async () => {
    const { client, writes } = scriptedStores(["not-leader", "unavailable", "ok"]);
    await client.put("k", "v");
    // store1 says store2 leads; store2 is not reached; the next peer, store1 again, takes it.
    expect(writes).toEqual(["put@store1", "put@store1"]);
    client.close();
  });
});
