/** The load generator's worker threads, as the main thread drives them (bench/worker.ts runs in each). */
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { FromWorker, ToWorker, WorkerConfig } from "./worker.js";

export class WorkerHandle {
  readonly worker: Worker;
  private waiters: ((m: FromWorker) => void)[] = [];
  onBatch: (m: Extract<FromWorker, { type: "batch" }>) => void = () => {};
  onLoadProgress: (ok: number) => void = () => {};
  fatal?: string;
  constructor(cfg: WorkerConfig) {
    this.worker = new Worker(fileURLToPath(new URL("./worker.js", import.meta.url)), { workerData: cfg });
    this.worker.on("message", (m: FromWorker) => {
      if (m.type === "batch") return this.onBatch(m);
      if (m.type === "loadProgress") return this.onLoadProgress(m.ok);
      if (m.type === "fatal") this.fatal = m.message;
      const w = this.waiters.shift();
      if (w) w(m);
    });
    this.worker.on("error", (err) => {
      this.fatal = err.message;
      for (const w of this.waiters.splice(0)) w({ type: "fatal", message: err.message });
    });
  }
  /** Sends a command and waits for the next non-batch message, with a deadline. */
  async request(cmd: ToWorker | null, deadlineMs: number): Promise<FromWorker> {
    const p = new Promise<FromWorker>((res) => this.waiters.push(res));
    if (cmd) this.worker.postMessage(cmd);
    const t = sleep(deadlineMs).then(() => ({ type: "fatal", message: "worker did not answer in time" }) as FromWorker);
    return Promise.race([p, t]);
  }
}
