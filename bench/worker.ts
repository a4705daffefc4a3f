/**
 * One load-generating worker thread: its own driver (own gRPC channels) and `concurrency` request
 * loops. Driven by the main thread (run.ts) with messages; reports latencies in batches.
 */
import { parentPort, workerData } from "node:worker_threads";
import { performance } from "node:perf_hooks";
import type { Target, TinyKvDriverKind } from "./drivers/index.js";
import { createDriver } from "./drivers/index.js";
import type { Driver, DriverOptions } from "./drivers/types.js";
import { errorLabel } from "./drivers/types.js";
import type { Distribution } from "./keys.js";
import { chooser, keyOf, LOAD_BATCH_KEYS } from "./keys.js";

export type Workload = "put" | "get" | "mixed" | "scan" | "txn" | "load";
export type OpKind = "put" | "get" | "scan" | "txn" | "load";

export interface WorkerConfig {
  index: number;
  target: Target;
  tinykvDriver: TinyKvDriverKind;
  driver: DriverOptions;
  concurrency: number;
  keys: number;
  valueSize: number;
  distribution: Distribution;
  scanLimit: number;
  readRatio: number;
}

export type ToWorker =
  | { cmd: "load"; from: number; to: number; deadlineAt: number }
  | { cmd: "run"; workload: Workload; warmupEndAt: number; endAt: number }
  | { cmd: "close" };

export type FromWorker =
  | { type: "ready" }
  | { type: "fatal"; message: string }
  | { type: "loaded"; ok: number; errors: Record<string, number> }
  /** Keys loaded since the previous progress message. */
  | { type: "loadProgress"; ok: number }
  /** Latencies (µs) of ops completed since the previous batch; measured = inside the run window. */
  | { type: "batch"; measured: boolean; lat: Partial<Record<OpKind, Float64Array>>; errors: Record<string, number> }
  | { type: "done" };

const now = (): number => performance.timeOrigin + performance.now();

class Batch {
  lat: Partial<Record<OpKind, number[]>> = {};
  errors: Record<string, number> = {};
  empty = true;
  add(kind: OpKind, us: number): void {
    (this.lat[kind] ??= []).push(us);
    this.empty = false;
  }
  err(label: string): void {
    this.errors[label] = (this.errors[label] ?? 0) + 1;
    this.empty = false;
  }
}

/** One op of the `load` workload: LOAD_BATCH_KEYS consecutive keys from `first` (wrapping), one batch put. */
async function loadBatch(driver: Driver, first: number, keySpace: number, value: Buffer): Promise<void> {
  if (!driver.batchPut) throw new Error(`${driver.name} has no batch put`);
  const pairs = Array.from({ length: LOAD_BATCH_KEYS }, (_, j) => ({ key: keyOf((first + j) % keySpace), value }));
  await driver.batchPut(pairs);
}

async function main(): Promise<void> {
  const cfg = workerData as WorkerConfig;
  const port = parentPort!;
  const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  let driver: Driver;
  try {
    driver = await createDriver(cfg.target, cfg.driver, cfg.tinykvDriver);
  } catch (err) {
    post({ type: "fatal", message: `worker ${cfg.index}: ${(err as Error).message}` });
    return;
  }
  const value = Buffer.alloc(cfg.valueSize, 0x61 + cfg.index);
  value.fill(0, 0, Math.min(8, cfg.valueSize));
  const keys = chooser(cfg.distribution, cfg.keys);

  async function load(from: number, to: number, deadlineAt: number): Promise<void> {
    let next = from;
    let ok = 0;
    const errors: Record<string, number> = {};
    const loop = async () => {
      while (next < to && now() < deadlineAt) {
        const i = next++;
        for (let attempt = 0; attempt < 3; attempt++) {
          try {
            await driver.put(keyOf(i), value);
            ok++;
            break;
          } catch (err) {
            if (attempt === 2) {
              const l = errorLabel(err);
              errors[l] = (errors[l] ?? 0) + 1;
            }
          }
        }
      }
    };
    let reported = 0;
    const timer = setInterval(() => {
      post({ type: "loadProgress", ok: ok - reported });
      reported = ok;
    }, 500);
    await Promise.all(Array.from({ length: cfg.concurrency }, loop));
    clearInterval(timer);
    post({ type: "loaded", ok, errors });
  }

  async function run(workload: Workload, warmupEndAt: number, endAt: number): Promise<void> {
    let warm = new Batch();
    let meas = new Batch();
    const flush = () => {
      for (const [b, measured] of [
        [warm, false],
        [meas, true],
      ] as const) {
        if (b.empty) continue;
        const lat: Partial<Record<OpKind, Float64Array>> = {};
        const transfer: ArrayBuffer[] = [];
        for (const [k, arr] of Object.entries(b.lat)) {
          const f = Float64Array.from(arr);
          lat[k as OpKind] = f;
          transfer.push(f.buffer);
        }
        post({ type: "batch", measured, lat, errors: b.errors }, transfer);
      }
      warm = new Batch();
      meas = new Batch();
    };
    const timer = setInterval(flush, 200);
    const pick = (): OpKind => {
      switch (workload) {
        case "mixed":
          return Math.random() < cfg.readRatio ? "get" : "put";
        case "txn":
          return "txn";
        default:
          return workload;
      }
    };
    const loop = async () => {
      while (now() < endAt) {
        const kind = pick();
        const key = keyOf(keys.next());
        const t0 = performance.now();
        let errLabel: string | undefined;
        try {
          switch (kind) {
            case "put":
              await driver.put(key, value);
              break;
            case "get":
              if ((await driver.get(key)) === undefined) errLabel = "get: key not found";
              break;
            case "scan":
              await driver.scan(key, cfg.scanLimit);
              break;
            case "txn":
              if (!driver.rmw) throw new Error(`${driver.name} has no transactions`);
              await driver.rmw(key, value);
              break;
            case "load":
              await loadBatch(driver, keys.next(), cfg.keys, value);
              break;
          }
        } catch (err) {
          errLabel = errorLabel(err);
        }
        const t1 = performance.now();
        const done = performance.timeOrigin + t1;
        const b = done >= warmupEndAt && done < endAt ? meas : warm;
        if (errLabel !== undefined) b.err(errLabel);
        else b.add(kind, (t1 - t0) * 1000);
      }
    };
    await Promise.all(Array.from({ length: cfg.concurrency }, loop));
    clearInterval(timer);
    flush();
    post({ type: "done" });
  }

  port.on("message", (m: ToWorker) => {
    if (m.cmd === "load") void load(m.from, m.to, m.deadlineAt);
    else if (m.cmd === "run") void run(m.workload, m.warmupEndAt, m.endAt);
    else if (m.cmd === "close") {
      void Promise.resolve(driver.close()).finally(() => port.close());
    }
  });
  post({ type: "ready" });
}

void main();
