// tinykv-ctl watch <prefix>, a ChangeData client generated at run time from proto/ (as a user of
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
