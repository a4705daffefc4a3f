// Review: a region heartbeat whose region is malformed (start key after end key, an empty range, or
// two peers on one store) must be refused with a clear error. Accepting it corrupts the routing
// table (GetRegion finds no region for keys a real region covers) or the store statistics.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Peer, Region, Store } from "../../src/proto/metapb.js";
import { RegionHeartbeatRequest } from "../../src/proto/schedulerpb.js";
import { SchedulerCore } from "../../src/scheduler/core/core.js";
import { MemoryMetaKV } from "../../src/scheduler/core/meta-kv.js";
import { SchedulerError } from "../../src/scheduler/errors.js";

const b = (s: string) => Buffer.from(s);

function attempt(fn: () => unknown): unknown {
  try {
    fn();
    return undefined;
  } catch (e) {
    return e;
  }
}

describe("malformed region heartbeats", () => {
  let core: SchedulerCore;
  const beat = (region: Region, leader: Peer) =>
    core.handleRegionHeartbeat(
      RegionHeartbeatRequest.create({
        header: { clusterId: core.clusterId },
        region,
        leader,
        approximateSize: 10n << 20n,
      }),
    );
  const peers = (base: bigint) => [1n, 2n, 3n].map((s) => Peer.create({ id: base + s, storeId: s }));

  beforeEach(async () => {
    core = await SchedulerCore.open(new MemoryMetaKV());
    await core.bootstrap(Store.create({ id: 1n, address: "127.0.0.1:20401" }));
    await core.putStore(Store.create({ id: 2n, address: "127.0.0.1:20402" }));
    await core.putStore(Store.create({ id: 3n, address: "127.0.0.1:20403" }));
    const left = peers(10n);
    const right = peers(20n);
    beat(
      Region.create({
        id: 1n,
        startKey: b(""),
        endKey: b("m"),
        regionEpoch: { version: 2n, confVer: 1n },
        peers: left,
      }),
      left[0]!,
    );
    beat(
      Region.create({
        id: 2n,
        startKey: b("m"),
        endKey: b(""),
        regionEpoch: { version: 2n, confVer: 1n },
        peers: right,
      }),
      right[0]!,
    );
  });
  afterEach(() => core.close());

  it("a region whose start key is after its end key is refused; routing is unchanged", () => {
    const p = peers(30n);
    const bad = Region.create({
      id: 3n,
      startKey: b("q"),
      endKey: b("c"),
      regionEpoch: { version: 5n, confVer: 5n },
      peers: p,
    });
    const err = attempt(() => beat(bad, p[0]!));
    expect(core.getRegionByKey(b("r"))?.meta.id, "the region holding key r").toBe(2n);
    expect(err, "an inverted range accepted").toBeInstanceOf(SchedulerError);
  });

  it("a region with an empty range is refused and evicts nothing", () => {
    const p = peers(40n);
    const bad = Region.create({
      id: 4n,
      startKey: b("q"),
      endKey: b("q"),
      regionEpoch: { version: 5n, confVer: 5n },
      peers: p,
    });
    const err = attempt(() => beat(bad, p[0]!));
    expect(core.getRegionByKey(b("z"))?.meta.id, "the region holding key z").toBe(2n);
    expect(err, "an empty range accepted").toBeInstanceOf(SchedulerError);
  });

  it("a region with two peers on one store is refused; store statistics stay right", () => {
    const p = [Peer.create({ id: 51n, storeId: 1n }), Peer.create({ id: 52n, storeId: 1n })];
    const bad = Region.create({
      id: 1n,
      startKey: b(""),
      endKey: b("m"),
      regionEpoch: { version: 3n, confVer: 2n },
      peers: p,
    });
    const err = attempt(() => beat(bad, p[0]!));
    // Whatever happened, once region 1 is back to its real peers store 1 must count 2 regions of 10 MiB.
    const good = peers(60n);
    beat(
      Region.create({
        id: 1n,
        startKey: b(""),
        endKey: b("m"),
        regionEpoch: { version: 3n, confVer: 3n },
        peers: good,
      }),
      good[1]!,
    );
    const s1 = core.cluster.getStore(1n)!;
    expect({ leaderSize: s1.leaderSize, regionSize: s1.regionSize }, "store 1 statistics").toEqual({
      leaderSize: 10,
      regionSize: 20,
    });
    expect(err, "two peers on one store accepted").toBeInstanceOf(SchedulerError);
  });
});
