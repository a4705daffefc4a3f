#!/usr/bin/env node
/**
 * YCSB-like load generator for tinykv and etcd. See bench/README.md.
 *
 *   node dist/bench/run.js --target etcd --start-cluster --workload put,get --concurrency 64
 */
import "../src/cli/v8-tiering.js";
import { parseArgs } from "node:util";
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { Target, TinyKvDriverKind } from "./drivers/index.js";
import { createDriver, TINYKV_DRIVER_KINDS } from "./drivers/index.js";
import { TinyKvRawDriver } from "./drivers/tinykv-raw.js";
import type { DriverOptions } from "./drivers/types.js";
import { KEY_PREFIX } from "./keys.js";
import { busyShare, cpuSample } from "./machine.js";
import type { LocalCluster } from "./cluster.js";
import { startEtcd, startTinyKv } from "./cluster.js";
import type { Workload } from "./worker.js";
import type { Row } from "./report.js";
import { table } from "./report.js";
import { WorkerHandle } from "./worker-handle.js";
import type { RunSettings } from "./workload-run.js";
import { runWorkload } from "./workload-run.js";

const USAGE = `Usage: node dist/bench/run.js [flags]

  --target tinykv|etcd        store to drive (default tinykv)
  --workload LIST             comma-separated: put,get,mixed,scan,txn,load (default put); run in order
                              against the same cluster (txn = read-modify-write transaction, tinykv only;
                              load = RawBatchPut of 100 consecutive keys per op, tinykv client only:
                              compare its keys/s with put's)
  --concurrency N             request loops in flight, over all workers (default 64)
  --workers N                 worker threads generating load, each with its own channels (default 2)
  --channels N                gRPC channels (TCP connections) per endpoint per worker (default 1)
  --keys N                    key space size (default 10000)
  --value-size N              value bytes (default 256)
  --distribution D            uniform|zipfian (default uniform)
  --read-ratio F              share of gets in "mixed" (default 0.5)
  --scan-limit N              pairs per scan (default 10)
  --duration S                measured seconds per workload (default 10)
  --warmup S                  unmeasured seconds before each workload (default 2)
  --timeout-ms N              deadline of one request incl. internal retries (default 5000)
  --tinykv-driver client|client-unary|raw
                              tinykv through the client library (default: one BatchCommands stream per
                              store), the client library on unary rpcs only, or bench's raw-rpc driver
  --endpoints LIST            tinykv: scheduler address(es) (default 127.0.0.1:2379);
                              etcd: client endpoints (default 127.0.0.1:2390,2391,2392)
  --start-cluster             start a fresh local 3-member cluster of the target, stop it after
  --keep-data                 keep the started cluster's temp dir (logs, data)
  --etcd-bin PATH             etcd binary (default /usr/bin/etcd, else etcd on PATH)
  --etcd-port N               first etcd client port (default 2390; peers at 2490+)
  --scheduler-port N          started tinykv scheduler port (default 2379)
  --store-port N              first started tinykv store port (default 20160)
  --server-log-level L        log level of started tinykv processes (default warn)
  --server-config FILE        --config JSON passed to started tinykv-server processes
  --profile-store LIST        run started stores LIST (e.g. 1 or 1,2,3) with node --cpu-prof
  --prof-dir DIR              where --cpu-prof writes (default the cluster temp dir; kept)
  --skip-load                 do not load the key space before read workloads
  --json FILE                 also write the results as JSON
  -h, --help                  show this help
`;

const WORKLOADS = new Set<Workload>(["put", "get", "mixed", "scan", "txn", "load"]);

function die(msg: string): never {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}

function num(v: string | undefined, name: string, min = 0): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) die(`invalid --${name} ${JSON.stringify(v)}`);
  return n;
}

const { values: a } = parseArgs({
  options: {
    target: { type: "string", default: "tinykv" },
    workload: { type: "string", default: "put" },
    concurrency: { type: "string", default: "64" },
    workers: { type: "string", default: "2" },
    channels: { type: "string", default: "1" },
    keys: { type: "string", default: "10000" },
    "value-size": { type: "string", default: "256" },
    distribution: { type: "string", default: "uniform" },
    "read-ratio": { type: "string", default: "0.5" },
    "scan-limit": { type: "string", default: "10" },
    duration: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
    "timeout-ms": { type: "string", default: "5000" },
    endpoints: { type: "string" },
    "tinykv-driver": { type: "string", default: "client" },
    "start-cluster": { type: "boolean", default: false },
    "keep-data": { type: "boolean", default: false },
    "etcd-bin": { type: "string" },
    "etcd-port": { type: "string", default: "2390" },
    "scheduler-port": { type: "string", default: "2379" },
    "store-port": { type: "string", default: "20160" },
    "server-log-level": { type: "string", default: "warn" },
    "server-config": { type: "string" },
    "profile-store": { type: "string" },
    "prof-dir": { type: "string" },
    "skip-load": { type: "boolean", default: false },
    json: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});
if (a.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const target = a.target as Target;
if (target !== "tinykv" && target !== "etcd") die(`invalid --target ${a.target}`);
const workloads = a.workload!.split(",").map((s) => s.trim()) as Workload[];
for (const w of workloads) if (!WORKLOADS.has(w)) die(`invalid workload ${JSON.stringify(w)}`);
if (target === "etcd" && workloads.includes("txn")) die("the txn workload is tinykv only");
if (target === "etcd" && workloads.includes("load")) die("the load workload (RawBatchPut) is tinykv only");
const distribution = a.distribution as "uniform" | "zipfian";
if (distribution !== "uniform" && distribution !== "zipfian") die(`invalid --distribution ${a.distribution}`);
const concurrency = num(a.concurrency, "concurrency", 1);
const workers = Math.min(num(a.workers, "workers", 1), concurrency);
const channels = num(a.channels, "channels", 1);
const keys = num(a.keys, "keys", 1);
const valueSize = num(a["value-size"], "value-size", 1);
const readRatio = num(a["read-ratio"], "read-ratio");
const scanLimit = num(a["scan-limit"], "scan-limit", 1);
const durationS = num(a.duration, "duration", 0.1);
const warmupS = num(a.warmup, "warmup");
const timeoutMs = num(a["timeout-ms"], "timeout-ms", 1);
const tinykvDriver = a["tinykv-driver"] as TinyKvDriverKind;
if (!TINYKV_DRIVER_KINDS.includes(tinykvDriver)) die(`invalid --tinykv-driver ${a["tinykv-driver"]}`);
const etcdPort = num(a["etcd-port"], "etcd-port", 1);
const runSettings: RunSettings = { target, warmupS, durationS, timeoutMs };

async function waitEtcdReady(endpoints: string[], deadlineMs: number, died?: Promise<never>): Promise<void> {
  const d = await createDriver("etcd", { endpoints, channels: 1, timeoutMs: 1000, keyPrefix: KEY_PREFIX });
  const deadline = Date.now() + deadlineMs;
  let last = "";
  try {
    // Every member must serve a linearizable read (has a leader) and the cluster a write.
    while (Date.now() < deadline) {
      try {
        const work = (async () => {
          await d.put(Buffer.from("bench/ready"), Buffer.from("1"));
          for (let i = 0; i < endpoints.length; i++) await d.get(Buffer.from("bench/ready"));
        })();
        await (died ? Promise.race([work, died]) : work);
        return;
      } catch (err) {
        if (died && /exited early/.test((err as Error).message)) throw err;
        last = (err as Error).message;
      }
      await sleep(200);
    }
    throw new Error(`etcd not ready after ${deadlineMs} ms: ${last}`);
  } finally {
    await d.close();
  }
}

async function main(): Promise<void> {
  let lc: LocalCluster | undefined;
  let endpoints = a.endpoints
    ? a.endpoints.split(",").map((s) => s.trim())
    : target === "etcd"
      ? [0, 1, 2].map((i) => `127.0.0.1:${etcdPort + i}`)
      : ["127.0.0.1:2379"];
  const handles: WorkerHandle[] = [];
  let stopping = false;
  const cleanup = async () => {
    if (stopping) return;
    stopping = true;
    await Promise.all(handles.map((h) => h.worker.terminate()));
    if (lc) {
      process.stderr.write(`stopping the ${target} cluster...\n`);
      await lc.stop(a["keep-data"] || a["profile-store"] !== undefined);
      if (a["keep-data"] || a["profile-store"] !== undefined) process.stderr.write(`cluster dir kept: ${lc.dir}\n`);
    }
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const)
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: stopping\n`);
      void cleanup().finally(() => process.exit(130));
    });

  try {
    const t0 = Date.now();
    const before = cpuSample();
    await sleep(1000);
    const idleBusy = busyShare(before, cpuSample());
    if (idleBusy !== undefined) {
      const pct = Math.round(idleBusy * 100);
      process.stderr.write(
        `machine busy before the run: ${pct}% of ${cpus().length} CPUs${pct > 15 ? " -- other processes are running; expect low, noisy numbers" : ""}\n`,
      );
    }
    if (a["start-cluster"]) {
      if (target === "etcd") {
        const bin = a["etcd-bin"] ?? "/usr/bin/etcd";
        const { cluster, died } = await startEtcd({ clientPort: etcdPort, peerPort: etcdPort + 100, members: 3, bin });
        lc = cluster;
        endpoints = cluster.endpoints;
        process.stderr.write(`started etcd x3 (${endpoints.join(", ")}) in ${cluster.dir}\n`);
        await waitEtcdReady(endpoints, 30_000, died);
      } else {
        const { cluster, died, scheduler } = await startTinyKv({
          schedulerPort: num(a["scheduler-port"], "scheduler-port", 1),
          storePort: num(a["store-port"], "store-port", 1),
          stores: 3,
          profileStores: a["profile-store"]
            ? a["profile-store"].split(",").map((x) => num(x, "profile-store", 1))
            : undefined,
          profDir: a["prof-dir"],
          logLevel: a["server-log-level"]!,
          config: a["server-config"],
        });
        lc = cluster;
        endpoints = [scheduler];
        process.stderr.write(
          `started tinyscheduler + 3 tinykv-server (${JSON.stringify(cluster.pids)}) in ${cluster.dir}\n`,
        );
        const d = await Promise.race([
          TinyKvRawDriver.connect({ endpoints, channels: 1, timeoutMs: 2000, keyPrefix: KEY_PREFIX }),
          died,
        ]);
        try {
          const leader = await Promise.race([d.waitReady(3, 60_000, Buffer.from("bench/ready")), died]);
          process.stderr.write(`region leader: store ${leader.storeId} at ${leader.addr}\n`);
        } finally {
          d.close();
        }
      }
      process.stderr.write(`cluster ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    } else if (target === "etcd") {
      await waitEtcdReady(endpoints, 5000);
    }

    const driver: DriverOptions = { endpoints, channels, timeoutMs, keyPrefix: KEY_PREFIX };
    for (let i = 0; i < workers; i++) {
      const share = Math.floor(concurrency / workers) + (i < concurrency % workers ? 1 : 0);
      handles.push(
        new WorkerHandle({
          index: i,
          target,
          tinykvDriver,
          driver,
          concurrency: share,
          keys,
          valueSize,
          distribution,
          scanLimit,
          readRatio,
        }),
      );
    }
    for (const m of await Promise.all(handles.map((h) => h.request(null, 30_000))))
      if (m.type !== "ready") throw new Error(m.type === "fatal" ? m.message : "worker failed");

    const rows: Row[] = [];
    let loaded = a["skip-load"];
    for (const workload of workloads) {
      if (!loaded && (workload === "get" || workload === "mixed" || workload === "scan")) {
        const lt = Date.now();
        process.stderr.write(`loading ${keys} keys of ${valueSize} B...\n`);
        const per = Math.ceil(keys / workers);
        let done = 0;
        for (const h of handles) h.onLoadProgress = (n) => (done += n);
        const lp = setInterval(
          () =>
            process.stderr.write(`[load] ${((Date.now() - lt) / 1000).toFixed(0).padStart(3)}s ${done}/${keys} keys\n`),
          1000,
        );
        const res = await Promise.all(
          handles.map((h, i) =>
            h.request(
              { cmd: "load", from: i * per, to: Math.min(keys, (i + 1) * per), deadlineAt: Date.now() + 300_000 },
              310_000,
            ),
          ),
        );
        clearInterval(lp);
        let ok = 0;
        const errs: Record<string, number> = {};
        for (const m of res) {
          if (m.type !== "loaded") throw new Error(m.type === "fatal" ? m.message : "load failed");
          ok += m.ok;
          for (const [k, n] of Object.entries(m.errors)) errs[k] = (errs[k] ?? 0) + n;
        }
        process.stderr.write(
          `loaded ${ok}/${keys} keys in ${((Date.now() - lt) / 1000).toFixed(1)} s${Object.keys(errs).length ? ` errors ${JSON.stringify(errs)}` : ""}\n`,
        );
        if (ok < keys) throw new Error(`load incomplete: ${ok}/${keys}`);
        loaded = true;
      }
      rows.push(...(await runWorkload(workload, handles, lc ? lc.pids : {}, runSettings)));
      const dead = lc?.exited() ?? {};
      if (Object.keys(dead).length > 0) {
        const msg = `cluster processes exited during ${workload}: ${JSON.stringify(dead)}; logs in ${lc!.dir}`;
        process.stderr.write(`bench: ${msg}\n`);
        rows[rows.length - 1]!.errorKinds["cluster process exited"] = Object.keys(dead).length;
        a["keep-data"] = true;
        break;
      }
    }

    // Keep the logs of a run with errors (write conflicts of the txn workload are expected, not errors of the store).
    if (lc && rows.some((r) => Object.keys(r.errorKinds).some((k) => !k.startsWith("txn conflict"))))
      a["keep-data"] = true;
    const out = table(rows);
    process.stdout.write(`\n${out}\n`);
    const errorRows = rows.filter((r) => r.errors > 0);
    for (const r of errorRows)
      process.stdout.write(`errors in ${r.target} ${r.workload}: ${JSON.stringify(r.errorKinds)}\n`);
    for (const r of rows)
      if (r.serverCpuMsPerOpByProc)
        process.stdout.write(
          `server CPU ms/op by process, ${r.workload}: ${Object.entries(r.serverCpuMsPerOpByProc)
            .map(([n, v]) => `${n} ${v.toFixed(3)}`)
            .join(", ")}\n`,
        );
    if (a.json) {
      const doc = {
        target,
        when: new Date().toISOString(),
        config: {
          workloads,
          tinykvDriver: target === "tinykv" ? tinykvDriver : undefined,
          concurrency,
          workers,
          channels,
          keys,
          valueSize,
          distribution,
          readRatio,
          scanLimit,
          durationS,
          warmupS,
          timeoutMs,
          endpoints,
          startCluster: a["start-cluster"],
        },
        machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, loadavg: loadavg() },
        results: rows,
      };
      writeFileSync(a.json, JSON.stringify(doc, null, 2) + "\n");
      process.stderr.write(`wrote ${a.json}\n`);
    }
    await Promise.all(handles.map((h) => h.request({ cmd: "close" }, 3000)));
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(
      `bench: ${process.env.BENCH_DEBUG ? ((err as Error).stack ?? err) : ((err as Error).message ?? err)}\n`,
    );
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 100).unref();
  },
);
