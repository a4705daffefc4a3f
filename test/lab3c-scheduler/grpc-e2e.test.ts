// End to end over gRPC: the generated client and SchedulerRpcClient against a real tinyscheduler service.
import type { ServiceError } from "@grpc/grpc-js";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfChangeType } from "../../src/proto/eraftpb.js";
import { Peer, Region, StoreState } from "../../src/proto/metapb.js";
import type { RegionHeartbeatResponse } from "../../src/proto/schedulerpb.js";
import {
  ErrorType,
  OperatorStatus,
  RegionHeartbeatRequest,
  SchedulerClient,
  StoreStats,
} from "../../src/proto/schedulerpb.js";
import { SchedulerError, SchedulerRpcClient, SchedulerRpcError } from "../../src/scheduler/client/client.js";
import type { SchedulerServer } from "../../src/scheduler/server/server.js";
import { startScheduler, tempDir, waitFor } from "./helpers.js";

let server: SchedulerServer;
let raw: SchedulerClient;
let client: SchedulerRpcClient;
let cleanupDir: () => Promise<void>;

function unary<Resp>(method: string, req: object): Promise<Resp> {
  const fn = (raw as unknown as Record<string, (...args: unknown[]) => unknown>)[method]!;
  return new Promise((resolve, reject) =>
    fn.call(raw, req, new Metadata(), { deadline: Date.now() + 2000 }, (err: ServiceError | null, r: Resp) =>
      err ? reject(err) : resolve(r),
    ),
  );
}

async function getJson(path: string): Promise<any> {
  const res = await fetch(`http://${server.statusAddr}${path}`);
  expect(res.status, `GET ${path}`).toBe(200);
  return res.json();
}

const region = (id: bigint, start: string, end: string, peers: Peer[], version = 1n, confVer = 1n) =>
  Region.create({
    id,
    startKey: Buffer.from(start),
    endKey: Buffer.from(end),
    regionEpoch: { version, confVer },
    peers,
  });

beforeAll(async () => {
  const dir = await tempDir();
  cleanupDir = dir.cleanup;
  server = await startScheduler(dir.path);
  raw = new SchedulerClient(server.addr, credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  raw?.close();
  await server?.stop();
  await cleanupDir?.();
});

describe("tinyscheduler over gRPC", () => {
  it("GetMembers answers any cluster id and names itself leader", async () => {
    const r = await unary<any>("getMembers", { header: { clusterId: 12345n } });
    expect(r.header.clusterId).toBe(server.clusterId);
    expect(r.leader.clientUrls).toEqual([`http://${server.addr}`]);
    expect(r.members).toHaveLength(1);
  });

  it("rejects a wrong cluster id with FAILED_PRECONDITION, on unary calls and on streams", async () => {
    const err: any = await unary("isBootstrapped", { header: { clusterId: server.clusterId + 1n } }).catch((e) => e);
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/mismatch cluster id/);
    const stream = raw.tso();
    const streamErr = await new Promise<ServiceError>((resolve) => {
      stream.on("error", resolve);
      stream.on("data", () => {});
      stream.write({ header: { clusterId: 1n }, count: 1 });
    });
    expect(streamErr.code).toBe(status.FAILED_PRECONDITION);
  });

  it("answers NOT_BOOTSTRAPPED before bootstrap", async () => {
    client = await SchedulerRpcClient.connect([`http://${server.addr}`]);
    expect(client.clusterId).toBe(server.clusterId);
    expect(await client.isBootstrapped()).toBe(false);
    const err = await client.getAllStores().catch((e) => e);
    expect(err).toBeInstanceOf(SchedulerError);
    expect(err.type).toBe(ErrorType.NOT_BOOTSTRAPPED);
    const hb = raw.regionHeartbeat();
    const resp = await new Promise<RegionHeartbeatResponse>((resolve, reject) => {
      hb.on("data", resolve);
      hb.on("error", reject);
      hb.write(
        RegionHeartbeatRequest.create({ header: { clusterId: server.clusterId }, region: region(1n, "", "", []) }),
      );
    });
    expect(resp.header?.error?.type).toBe(ErrorType.NOT_BOOTSTRAPPED);
    hb.cancel();
  });

  it("bootstraps once; a second bootstrap is ALREADY_BOOTSTRAPPED and changes nothing", async () => {
    const storeId = await client.allocId();
    // Concurrent bootstraps: exactly one wins.
    const candidates = [storeId, storeId + 1000n, storeId + 2000n];
    const results = await Promise.allSettled(
      candidates.map((id, i) =>
        client.bootstrap({ id, address: `127.0.0.1:${20160 + i * 1000}`, state: StoreState.Up }),
      ),
    );
    expect(
      results.filter((r) => r.status === "fulfilled"),
      "exactly one concurrent bootstrap wins",
    ).toHaveLength(1);
    const winner = candidates[results.findIndex((r) => r.status === "fulfilled")]!;
    expect(await client.isBootstrapped()).toBe(true);
    const again = await client
      .bootstrap({ id: 999n, address: "127.0.0.1:29999", state: StoreState.Up })
      .catch((e) => e);
    expect(again).toBeInstanceOf(SchedulerError);
    expect(again.type).toBe(ErrorType.ALREADY_BOOTSTRAPPED);
    expect((await client.getAllStores()).map((s) => s.id)).toEqual([winner]);
    expect(await client.getClusterConfig()).toEqual({ id: server.clusterId, maxPeerCount: 3 });
  });

  it("stores: put, get, unknown, duplicate address, heartbeat", async () => {
    const [s1] = await client.getAllStores();
    const s2 = await client.allocId();
    const s3 = await client.allocId();
    await client.putStore({ id: s2, address: "127.0.0.1:20161", state: StoreState.Up });
    await client.putStore({ id: s3, address: "127.0.0.1:20162", state: StoreState.Up });
    expect((await client.getStore(s2)).store.address).toBe("127.0.0.1:20161");
    const unknown = await client.getStore(424242n).catch((e) => e);
    expect(unknown).toBeInstanceOf(SchedulerRpcError);
    expect(unknown.code).toBe(status.UNKNOWN);
    expect(unknown.message).toMatch(/424242/);
    const dup = await client.putStore({ id: 777n, address: "127.0.0.1:20161", state: StoreState.Up }).catch((e) => e);
    expect(dup.message).toMatch(/duplicated store address/);
    await client.storeHeartbeat(
      StoreStats.create({ storeId: s1!.id, capacity: 100n, available: 60n, usedSize: 40n, regionCount: 1 }),
    );
    const got = await client.getStore(s1!.id);
    expect(got.stats?.capacity).toBe(100n);
    expect((await client.getAllStores()).length).toBe(3);
  });

  it("region heartbeats: routing, stale epochs, and a replica operator delivered on the stream", async () => {
    const stores = (await client.getAllStores()).map((s) => s.id);
    const peer1 = Peer.create({ id: await client.allocId(), storeId: stores[0]! });
    const responses: RegionHeartbeatResponse[] = [];
    client.onRegionHeartbeatResponse((r) => responses.push(r));
    const regionId = await client.allocId();
    const r1 = region(regionId, "", "", [peer1]);
    expect(client.regionHeartbeat({ region: r1, leader: peer1, pendingPeers: [], approximateSize: 5n << 20n })).toBe(
      true,
    );

    const found = await waitFor("region visible via GetRegion", () => client.getRegion(Buffer.from("anything")));
    expect(found.region.id).toBe(regionId);
    expect(found.leader).toEqual(peer1);
    expect((await client.getRegionById(regionId))?.region.id).toBe(regionId);
    expect(await client.getRegionById(9999999n)).toBeUndefined();

    // One peer, max replicas 3: the replica checker asks the leader to add a peer.
    const add = await waitFor(
      "AddNode command on the heartbeat stream",
      () => responses.find((r) => r.changePeer),
      5000,
    );
    expect(add.regionId).toBe(regionId);
    expect(add.changePeer!.changeType).toBe(ConfChangeType.AddNode);
    expect(stores).toContain(add.changePeer!.peer!.storeId);
    expect(add.changePeer!.peer!.storeId).not.toBe(peer1.storeId);
    expect(add.targetPeer).toEqual(peer1);
    const op = await client.getOperator(regionId);
    expect(op?.status).toBe(OperatorStatus.RUNNING);
    expect(op?.desc).toMatch(/replica-checker/);

    // Split: ask for ids, then report both halves.
    const split = await client.askSplit(r1);
    expect(split.newPeerIds).toHaveLength(1);
    const left = region(regionId, "", "m", [peer1], 2n);
    const right = region(split.newRegionId, "m", "", [{ id: split.newPeerIds[0]!, storeId: peer1.storeId }], 2n);
    client.regionHeartbeat({ region: right, leader: right.peers[0], pendingPeers: [], approximateSize: 0n });
    client.regionHeartbeat({ region: left, leader: peer1, pendingPeers: [], approximateSize: 0n });
    await waitFor("both halves routed", async () => (await client.scanRegions(Buffer.alloc(0))).length === 2);
    expect((await client.getRegion(Buffer.from("z")))?.region.id).toBe(split.newRegionId);
    expect((await client.getPrevRegion(Buffer.from("z")))?.region.id).toBe(regionId);
    const scanned = await client.scanRegions(Buffer.from("a"), Buffer.from("n"), 10);
    expect(scanned.map((r) => r.region.id)).toEqual([regionId, split.newRegionId]);
    expect(scanned[0]!.leader).toEqual(peer1);
    expect((await client.scanRegions(Buffer.alloc(0), Buffer.alloc(0), 1)).length).toBe(1);
    const ops = await getJson("/operators");
    expect(
      ops.recent.some((o: any) => o.region_id === regionId.toString() && o.status === "CANCEL"),
      "the split cancelled the running operator",
    ).toBe(true);

    // A stale heartbeat (old version) is answered with an error and changes nothing.
    responses.length = 0;
    client.regionHeartbeat({ region: r1, leader: peer1, pendingPeers: [], approximateSize: 0n });
    const stale = await waitFor("stale heartbeat error", () => responses.find((r) => r.header?.error));
    expect(stale.header!.error!.message).toMatch(/stale/);
    expect((await client.getRegion(Buffer.from("z")))?.region.id).toBe(split.newRegionId);

    // AskSplit with an old epoch is refused.
    const badSplit = await client.askSplit(region(regionId, "", "m", [peer1], 1n)).catch((e) => e);
    expect(badSplit.message).toMatch(/epoch/);
  });

  const setState = async (sid: bigint, state: string) => {
    const res = await fetch(`http://${server.statusAddr}/stores/${sid}/state/${state}`, { method: "POST" });
    return { status: res.status, body: (await res.json()) as { ok?: boolean; error?: string } };
  };

  it("a store becomes a tombstone only when offline and empty, with a clear error otherwise", async () => {
    const sid = await client.allocId();
    await client.putStore({ id: sid, address: "127.0.0.1:20198", state: StoreState.Up });
    const up = await setState(sid, "tombstone");
    expect(up.status).toBe(400);
    expect(up.body.error).toMatch(new RegExp(`store ${sid} from Up to Tombstone: only an Offline store`));

    // The store leads a region: offline, it is drained by the scheduler, not removed.
    const peer = Peer.create({ id: await client.allocId(), storeId: sid });
    const rid = await client.allocId();
    client.regionHeartbeat({
      region: region(rid, "zz-tomb-a", "zz-tomb-b", [peer], 10n),
      leader: peer,
      pendingPeers: [],
      approximateSize: 0n,
    });
    await waitFor("region on the store is known", async () => (await client.getRegionById(rid)) !== undefined);
    expect((await setState(sid, "offline")).status).toBe(200);
    const busy = await setState(sid, "tombstone");
    expect(busy.status).toBe(400);
    expect(busy.body.error).toMatch(/still holds 1 region; wait until the scheduler has moved them all away/);
    expect((await client.getAllStores(false)).find((s) => s.id === sid)?.state).toBe(StoreState.Offline);

    // Back up is allowed (a cancelled drain); PD's rule again for the tombstone.
    expect((await setState(sid, "up")).status).toBe(200);
    expect((await client.getAllStores(false)).find((s) => s.id === sid)?.state).toBe(StoreState.Up);
  });

  it("tombstone stores: heartbeat and PutStore answer STORE_TOMBSTONE", async () => {
    const sid = await client.allocId();
    await client.putStore({ id: sid, address: "127.0.0.1:20199", state: StoreState.Up });
    expect((await setState(sid, "offline")).status).toBe(200);
    const res = await setState(sid, "tombstone");
    expect(res.status, res.body.error).toBe(200);
    const hb = await client.storeHeartbeat(StoreStats.create({ storeId: sid })).catch((e) => e);
    expect(hb.type).toBe(ErrorType.STORE_TOMBSTONE);
    const put = await client.putStore({ id: sid, address: "127.0.0.1:20199", state: StoreState.Up }).catch((e) => e);
    expect(put.type).toBe(ErrorType.STORE_TOMBSTONE);
    expect((await client.getAllStores(true)).map((s) => s.id)).not.toContain(sid);
    expect((await client.getAllStores(false)).map((s) => s.id)).toContain(sid);
  });

  it("config and GC safe point", async () => {
    await client.putClusterConfig({ id: 0n, maxPeerCount: 5 });
    expect((await client.getClusterConfig()).maxPeerCount).toBe(5);
    await client.putClusterConfig({ id: 0n, maxPeerCount: 3 });
    expect(await client.updateGcSafePoint(100n)).toBe(100n);
    expect(await client.updateGcSafePoint(50n), "a smaller safe point is ignored").toBe(100n);
    expect(await client.getGcSafePoint()).toBe(100n);
  });

  it("TestConcurrentHandleRegion3C: 2000 concurrent heartbeats over several streams all land", async () => {
    const stores = (await client.getAllStores(true)).map((s) => s.id);
    const clients = await Promise.all([0, 1, 2].map(() => SchedulerRpcClient.connect(server.addr)));
    try {
      const n = 2000;
      for (let i = 0; i < n; i++) {
        const id = 1_000_000n + BigInt(i);
        const leader = Peer.create({ id: id * 10n, storeId: stores[i % stores.length]! });
        const key = (j: number) => `c${String(j).padStart(6, "0")}`;
        clients[i % 3]!.regionHeartbeat({
          region: region(id, key(i), key(i) + "~", [leader], 5n),
          leader,
          pendingPeers: [],
          approximateSize: 0n,
        });
      }
      await waitFor(
        `${n} regions visible`,
        async () => (await client.scanRegions(Buffer.from("c"), Buffer.from("d"), 0)).length === n,
        15_000,
        50,
      );
      const status = await getJson("/status");
      expect(status.region_count).toBeGreaterThanOrEqual(n);
    } finally {
      for (const c of clients) c.close();
    }
  });

  it("the status API serves stores, regions, operators and tso as JSON", async () => {
    const st = await getJson("/status");
    expect(st.cluster_id).toBe(server.clusterId.toString());
    expect(st.bootstrapped).toBe(true);
    expect((await getJson("/stores")).stores.length).toBeGreaterThanOrEqual(3);
    expect((await getJson("/regions")).count).toBeGreaterThan(0);
    expect(await getJson("/operators")).toHaveProperty("running");
    const t = await getJson("/tso");
    expect(BigInt(t.ts)).toBeGreaterThan(0n);
    expect((await fetch(`http://${server.statusAddr}/nope`)).status).toBe(404);
  });
});
