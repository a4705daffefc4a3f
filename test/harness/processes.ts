import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { TinyKvRpc } from "../../src/client/kv-rpc.js";
import { SchedulerRpcClient } from "../../src/scheduler/client/client.js";
import { freePort } from "./ports.js";
import { tempDir, waitFor } from "./wait.js";

const DIST = fileURLToPath(new URL("../../dist/src/cli/", import.meta.url));

export interface Proc {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

export function spawnNode(script: string, args: string[]): Proc {
  const child = spawn(process.execPath, [join(DIST, script), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, LOG_LEVEL: "warn" },
  });
  let out = "";
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** Fast ticks so a process cluster converges in seconds. */
export const FAST_STORE_CONFIG = {
  raftBaseTickMs: 50,
  schedulerHeartbeatTickMs: 200,
  schedulerStoreHeartbeatTickMs: 500,
  splitRegionCheckTickMs: 200,
  requestTimeoutMs: 3000,
};

/** tinyscheduler + N tinykv-server processes on loopback with fresh data dirs. */
export class ProcessCluster {
  readonly dir = tempDir("tinykv-proc-");
  schedulerAddr = "";
  scheduler: Proc | undefined;
  readonly stores = new Map<number, { addr: string; path: string; statusAddr: string; proc?: Proc }>();
  private configPath = "";
  client: SchedulerRpcClient | undefined;
  private readonly rpcs = new Map<string, TinyKvRpc>();

  constructor(private readonly storeConfig: Record<string, number> = FAST_STORE_CONFIG) {}

  /** The scheduler's status address when started with `status` ("" otherwise). */
  schedulerStatusAddr = "";

  async startScheduler(opts: { status?: boolean } = {}): Promise<void> {
    this.schedulerAddr = `127.0.0.1:${await freePort()}`;
    this.schedulerStatusAddr = opts.status ? `127.0.0.1:${await freePort()}` : "";
    this.scheduler = spawnNode("tinyscheduler.js", [
      "--addr",
      this.schedulerAddr,
      "--data-dir",
      join(this.dir.path, "scheduler"),
      "--status-addr",
      this.schedulerStatusAddr,
    ]);
    this.configPath = join(this.dir.path, "store-config.json");
    writeFileSync(this.configPath, JSON.stringify(this.storeConfig));
    this.client = await SchedulerRpcClient.connect(this.schedulerAddr, { connectDeadlineMs: 15_000 });
  }

  /** Starts store `n`; with `status`, it serves /metrics and /status on a free port (statusAddr). */
  async addStore(n: number, opts: { status?: boolean } = {}): Promise<void> {
    const addr = `127.0.0.1:${await freePort()}`;
    const statusAddr = opts.status ? `127.0.0.1:${await freePort()}` : "";
    this.stores.set(n, { addr, path: join(this.dir.path, `store${n}`), statusAddr });
    this.startStore(n);
  }

  startStore(n: number): void {
    const s = this.stores.get(n)!;
    s.proc = spawnNode("tinykv-server.js", [
      "--path",
      s.path,
      "--addr",
      s.addr,
      "--status-addr",
      s.statusAddr,
      "--scheduler",
      this.schedulerAddr,
      "--config",
      this.configPath,
    ]);
  }

  async kill(n: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const s = this.stores.get(n)!;
    if (!s.proc) return;
    s.proc.child.kill(signal);
    await s.proc.exited;
    s.proc = undefined;
  }

  /** Store ids the scheduler knows, by the test's store number. */
  async storeIdOf(n: number): Promise<bigint | undefined> {
    const addr = this.stores.get(n)!.addr;
    const stores = await this.client!.getAllStores(true);
    return stores.find((s) => s.address === addr)?.id;
  }

  private rpc(addr: string): TinyKvRpc {
    let c = this.rpcs.get(addr);
    if (!c) {
      c = new TinyKvRpc(addr, 3000);
      this.rpcs.set(addr, c);
    }
    return c;
  }

  /** Runs a raw rpc on the key's region leader, retrying region errors until the deadline. */
  async onLeader<T extends { regionError?: { message: string }; error?: string | unknown }>(
    key: Buffer,
    what: string,
    op: (rpc: TinyKvRpc, ctx: { regionId: bigint; regionEpoch: unknown; peer: unknown }) => Promise<T>,
    timeoutMs = 20_000,
  ): Promise<T> {
    let last = "";
    return waitFor(
      async () => {
        const r = await this.client!.getRegion(key);
        if (!r?.leader || r.leader.id === 0n) {
          last = "no leader known yet";
          return undefined;
        }
        const { store } = await this.client!.getStore(r.leader.storeId);
        const res = await op(this.rpc(store.address), {
          regionId: r.region.id,
          regionEpoch: r.region.regionEpoch,
          peer: r.leader,
        });
        if (res.regionError) {
          last = res.regionError.message;
          return undefined;
        }
        return res;
      },
      {
        timeoutMs,
        intervalMs: 50,
        get message() {
          return `${what} (last: ${last})`;
        },
      },
    );
  }

  put(key: string, value: string) {
    const k = Buffer.from(key);
    return this.onLeader(k, `put ${key}`, (rpc, ctx) =>
      rpc.rawPut({ context: ctx as never, key: k, value: Buffer.from(value) }),
    );
  }

  async get(key: string): Promise<string | undefined> {
    const k = Buffer.from(key);
    const res = await this.onLeader(k, `get ${key}`, (rpc, ctx) => rpc.rawGet({ context: ctx as never, key: k }));
    return res.notFound ? undefined : res.value.toString();
  }

  async shutdown(): Promise<void> {
    for (const c of this.rpcs.values()) c.close();
    this.client?.close();
    for (const n of this.stores.keys()) await this.kill(n, "SIGKILL");
    this.scheduler?.child.kill("SIGKILL");
    if (this.scheduler) await this.scheduler.exited;
    this.dir.cleanup();
  }

  logs(): string {
    return [...this.stores.entries()]
      .map(([n, s]) => `--- store ${n}\n${s.proc?.output().slice(-3000) ?? "(not running)"}`)
      .join("\n");
  }
}
