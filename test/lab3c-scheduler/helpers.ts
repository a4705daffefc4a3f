import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SchedulerServerOptions } from "../../src/scheduler/server/server.js";
import { SchedulerServer } from "../../src/scheduler/server/server.js";

export async function tempDir(prefix = "tinyscheduler-"): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** Polls `cond` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  cond: () => T | Promise<T>,
  timeoutMs = 5000,
  everyMs = 10,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A scheduler on 127.0.0.1 with a free port, fast scheduling loop, metadata under `dataDir`. */
export function startScheduler(dataDir: string, extra: Partial<SchedulerServerOptions> = {}): Promise<SchedulerServer> {
  return SchedulerServer.start({
    addr: "127.0.0.1:0",
    statusAddr: "127.0.0.1:0",
    dataDir,
    coordinator: { tickMs: 10, maxIntervalMs: 50 },
    regionFlushMs: 50,
    ...extra,
  });
}
