// two requests in flight together to a peer that lost its leadership all come back
// NotLeader with the same hint. The first answer moves the cached leader to the hinted peer; each
// later one finds the hint already "current" and, taking it for "no new hint", rotates the cached
// leader PAST the real leader to the next peer, and backs off. Scripted stores, no sockets.
import { describe, expect, it } from "vitest";
import type { KvConnection } from "../../src/client/index.js";
import { KvClient } from "../../src/client/index.js";
import * as kv from "../../src/proto/kvrpcpb.js";
import { fakeConnection, oneRegionScheduler, wholeRegion } from "./fake-scheduler.js";

const REGION = wholeRegion([1n, 2n, 3n]);

/** store2 leads; store1 and store3 answer NotLeader naming peer 12 (store2). */
function stores() {
  const gets: string[] = [];
  const connect = (addr: string): KvConnection => {
    return fakeConnection(addr, {
      rawGet: async () => {
        gets.push(addr);
        await new Promise((r) => setTimeout(r, 5));
        if (addr === "store2") return kv.RawGetResponse.fromPartial({ value: Buffer.from("v") });
        return kv.RawGetResponse.fromPartial({
          regionError: { message: "not leader", notLeader: { regionId: 1n, leader: REGION.peers[1] } },
        });
      },
    });
  };
  const client = KvClient.withScheduler(
    oneRegionScheduler(REGION, (id) => `store${id}`),
    { connectKv: connect, timeoutMs: 5000, backoff: { initialMs: 1, maxMs: 5 } },
  );
  return { client, gets };
}

describe("concurrent NotLeader answers with the same hint", () => {
  it("all follow the hint; none is sent to a peer the hint did not name", async () => {
    const { client, gets } = stores();
    const got = await Promise.all([client.get("a"), client.get("b")]);
    expect(got.map((v) => v?.toString())).toEqual(["v", "v"]);
    expect(
      gets.filter((a) => a === "store3"),
      `requests in order: ${gets.join(", ")}`,
    ).toEqual([]);
    // And the cache ends pointing at the leader: the next get goes straight to store2.
    gets.length = 0;
    await client.get("d");
    expect(gets).toEqual(["store2"]);
    client.close();
  });
});
