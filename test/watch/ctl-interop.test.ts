// tinykv-ctl watch <prefix> (and --raw), a ChangeData client generated at run time from proto/ (as a user of
// another language would build one), and a lock left by an abandoned txn, against three stores
// over real gRPC.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ctlRun } from "../harness/ctl.js";
import { waitFor } from "../harness/wait.js";
import type { KvClient } from "../../src/client/client.js";
import { Op } from "../../src/proto/kvrpcpb.js";
import { collectUntil, commitTxn, WatchCluster } from "./watch-cluster.js";

let cluster: WatchCluster;
let kv: KvClient;
beforeAll(async () => {
  cluster = new WatchCluster({ watch: { resolvedTsIntervalMs: 100 } });
  kv = await cluster.start();
}, 60_000);
afterAll(async () => {
  await cluster?.shutdown();
});

it("tinykv-ctl watch <prefix> prints each change as it commits, in commit order", async () => {
  const fromTs = await kv.tso();
  const c1 = await commitTxn(kv, [
    ["ctl/a", "1"],
    ["other", "x"],
  ]);
  const c2 = await commitTxn(kv, [
    ["ctl/b", "2"],
    ["ctl/a", undefined],
  ]);
  const { out, error } = await ctlRun({ scheduler: cluster.scheduler!.addr }, ["watch", "ctl/"], {
    "from-ts": String(fromTs),
    count: "3",
  });
  expect(error).toBeUndefined();
  expect(out).toBe(
    [`${c1[0]!.commitTs} put ctl/a 1`, `${c2[0]!.commitTs} delete ctl/a`, `${c2[0]!.commitTs} put ctl/b 2`, ""].join(
      "\n",
    ),
  );
  const bad = await ctlRun({ scheduler: cluster.scheduler!.addr }, ["watch", "ctl/"], { count: "0" });
  expect(bad.error?.message).toMatch(/--count must be a positive integer/);
}, 30_000);

it("a ChangeData client generated at run time from proto/ gets the scan, INITIALIZED and resolved ts", async () => {
  const protoDir = fileURLToPath(new URL("../../proto", import.meta.url));
  const def = protoLoader.loadSync("cdcpb.proto", {
    includeDirs: [protoDir],
    keepCase: true,
    longs: String,
    defaults: true,
  });
  // proto-loader clients are untyped by nature.
  const pkg = grpc.loadPackageDefinition(def) as any;
  const fromTs = await kv.tso();
  const [written] = await commitTxn(kv, [["gen/k", "v"]]);
  const target = await kv.cache.target(Buffer.from("gen/k"));
  const client = new pkg.cdcpb.ChangeData(target.addr, grpc.credentials.createInsecure());
  const events: any[] = [];
  const call = client.EventFeed({
    region_id: String(target.region.id),
    region_epoch: {
      conf_ver: String(target.region.regionEpoch!.confVer),
      version: String(target.region.regionEpoch!.version),
    },
    checkpoint_ts: String(fromTs),
    start_key: Buffer.from("gen/"),
    end_key: Buffer.from("gen0"),
  });
  call.on("data", (msg: any) => events.push(...msg.events));
  call.on("error", () => undefined); // the cancel below ends it with CANCELLED
  try {
    await waitFor(() => events.some((e) => e.resolved_ts !== undefined && BigInt(e.resolved_ts) >= written!.commitTs), {
      timeoutMs: 10_000,
      message: "no resolved ts past the commit arrived",
    });
  } finally {
    call.cancel();
  }
  const rows = events.flatMap((e) => e.entries?.entries ?? []);
  expect(rows.map((r: any) => [r.type, r.op_type, r.key.toString(), r.value.toString(), r.commit_ts])).toEqual([
    [4, 1, "gen/k", "v", String(written!.commitTs)], // COMMITTED (a scan row), PUT
    [5, 0, "", "", "0"], // INITIALIZED
  ]);
  // A malformed request gets an error event, not a crash.
  const bad = client.EventFeed({ region_id: "0" });
  const badEvents: any[] = [];
  await new Promise<void>((resolve) => {
    bad.on("data", (msg: any) => badEvents.push(...msg.events));
    bad.on("end", resolve);
    bad.on("error", () => resolve());
  });
  client.close();
  expect(badEvents[0]?.error?.message).toMatch(/region_id is required/);
}, 30_000);

it("a lock left by a txn that prewrote and went away does not stall the watch", async () => {
  const fromTs = await kv.tso();
  const key = Buffer.from("lock/abandoned");
  const target = await kv.cache.target(key);
  const pw = await target.rpc.kvPrewrite({
    context: target.ctx,
    mutations: [{ op: Op.Put, key, value: Buffer.from("never committed") }],
    primaryLock: key,
    startVersion: await kv.tso(),
    lockTtl: 100n,
  });
  expect(pw.regionError).toBeUndefined();
  expect(pw.errors).toEqual([]);
  const [written] = await commitTxn(kv, [["lock/committed", "yes"]]);
  // The lock holds the resolved ts below the commit until the watch resolves it (rolled back: its TTL expired).
  const watch = kv.watch("lock/", { fromTs });
  const seen = await collectUntil(watch, kv.tso(), 15_000);
  watch.stop();
  expect(seen).toEqual([written]);
}, 30_000);

it("tinykv-ctl watch --raw <prefix> prints raw changes with their region and raft index", async () => {
  const running = ctlRun({ scheduler: cluster.scheduler!.addr }, ["watch", "ctl-raw/"], { raw: true, count: "3" });
  let finished = false;
  void running.finally(() => {
    finished = true;
  });
  // The watch starts from now at some point: write until it has printed three changes.
  const deadline = Date.now() + 15_000;
  for (let i = 0; !finished; i++) {
    if (Date.now() > deadline) throw new Error("tinykv-ctl watch --raw printed fewer than 3 changes in 15 s");
    if (i % 3 === 2) await kv.delete(`ctl-raw/k${i - 1}`);
    else await kv.put(`ctl-raw/k${i}`, `v${i}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const { out, error } = await running;
  expect(error).toBeUndefined();
  const lines = out.trimEnd().split("\n");
  expect(lines).toHaveLength(3);
  const parsed = lines.map((l) => {
    const m = /^(\d+):(\d+) (put ctl-raw\/k(\d+) v\4|delete ctl-raw\/k(\d+))$/.exec(l);
    expect(m, `a line of tinykv-ctl watch --raw: ${JSON.stringify(l)}`).not.toBeNull();
    return { region: BigInt(m![1]!), index: BigInt(m![2]!) };
  });
  // One region, consecutive changes: each a later raft entry than the one before.
  expect(new Set(parsed.map((p) => p.region)).size).toBe(1);
  expect(parsed[1]!.index).toBeGreaterThan(parsed[0]!.index);
  expect(parsed[2]!.index).toBeGreaterThan(parsed[1]!.index);
  const bad = await ctlRun({ scheduler: cluster.scheduler!.addr }, ["watch", "ctl-raw/"], {
    raw: true,
    "from-ts": "5",
  });
  expect(bad.error?.message).toMatch(/--raw positions are raft indexes/);
}, 30_000);

it("a ChangeData client generated at run time from proto/ gets a raw feed: stored changes, INITIALIZED, live ones", async () => {
  const protoDir = fileURLToPath(new URL("../../proto", import.meta.url));
  const def = protoLoader.loadSync("cdcpb.proto", {
    includeDirs: [protoDir],
    keepCase: true,
    longs: String,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const target = await kv.cache.target(Buffer.from("gen-raw/k"));
  const client = new pkg.cdcpb.ChangeData(target.addr, grpc.credentials.createInsecure());
  const feed = (fromIndex: string) => {
    const events: any[] = [];
    const call = client.EventFeed({
      region_id: String(target.region.id),
      region_epoch: {
        conf_ver: String(target.region.regionEpoch!.confVer),
        version: String(target.region.regionEpoch!.version),
      },
      start_key: Buffer.from("gen-raw/"),
      end_key: Buffer.from("gen-raw0"),
      kv_api: 1, // RawKV
      from_index: fromIndex,
    });
    call.on("data", (msg: any) => events.push(...msg.events));
    call.on("error", () => undefined); // the cancel below ends it with CANCELLED
    return { events, call };
  };
  // Event.LogType, as numbers (proto-loader's default for enums).
  const [COMMIT, COMMITTED, INITIALIZED] = [2, 4, 5];
  const rowsOf = (events: any[]) => events.flatMap((e) => (e.entries?.entries ?? []).map((r: any) => ({ e, r })));
  const live = feed("0");
  const before = Date.now();
  try {
    await waitFor(() => rowsOf(live.events).some(({ r }) => r.type === INITIALIZED), {
      timeoutMs: 10_000,
      message: "no INITIALIZED on the raw feed",
    });
    await kv.put("gen-raw/k", "v", "", { ttlSeconds: 60 });
    await waitFor(() => rowsOf(live.events).some(({ r }) => r.key.toString() === "gen-raw/k"), {
      timeoutMs: 10_000,
      message: "the raw put never reached the generated client",
    });
  } finally {
    live.call.cancel();
  }
  const rows = rowsOf(live.events);
  expect(rows.map(({ r }) => r.type)).toEqual([INITIALIZED, COMMIT]);
  const { e, r } = rows[1]!;
  expect([e.region_id, r.op_type, r.key.toString(), r.value.toString()]).toEqual([
    String(target.region.id),
    1, // PUT
    "gen-raw/k",
    "v",
  ]);
  expect(BigInt(e.index)).toBeGreaterThan(BigInt(rows[0]!.e.index));
  expect(Number(r.expires_at_ms)).toBeGreaterThanOrEqual(before + 59_000);
  expect(Number(r.expire_ts_unix_secs)).toBe(Math.ceil(Number(r.expires_at_ms) / 1000));
  // From just before that entry: the stored record comes first, as a COMMITTED row.
  const replay = feed(String(BigInt(e.index) - 1n));
  try {
    await waitFor(() => rowsOf(replay.events).some(({ r }) => r.type === INITIALIZED), {
      timeoutMs: 10_000,
      message: "no INITIALIZED on the replaying raw feed",
    });
  } finally {
    replay.call.cancel();
    client.close();
  }
  const replayed = rowsOf(replay.events);
  expect(replayed.map(({ e, r }) => [e.index, r.type, r.key.toString()])).toEqual([
    [e.index, COMMITTED, "gen-raw/k"],
    [replayed[1]!.e.index, INITIALIZED, ""],
  ]);
}, 30_000);
