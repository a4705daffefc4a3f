/**
 * Starts a local 3-member cluster of either target as child processes on 127.0.0.1 with fresh
 * temp data dirs, and stops it (SIGTERM, then SIGKILL after a grace period). Logs go to files
 * in the temp dir, which is kept when --keep-data is given or the start fails.
 */
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

export interface LocalCluster {
  endpoints: string[];
  dir: string;
  /** Child processes by name, e.g. "store1" -> pid. */
  pids: Record<string, number>;
  /** Processes that have exited so far, with their exit code or signal. */
  exited(): Record<string, string>;
  stop(keepData?: boolean): Promise<void>;
}

interface Child {
  name: string;
  proc: ChildProcess;
  exited: Promise<number | null>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of live) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
});

function start(dir: string, name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Child {
  const log = createWriteStream(join(dir, `${name}.log`));
  const proc = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env });
  proc.stdout!.pipe(log);
  proc.stderr!.pipe(log);
  live.add(proc);
  const exited = new Promise<number | null>((res) =>
    proc.on("exit", (code) => {
      live.delete(proc);
      res(code);
    }),
  );
  proc.on("error", (err) => log.write(`spawn error: ${err.message}\n`));
  return { name, proc, exited };
}

async function stopAll(children: Child[], graceMs = 10_000): Promise<void> {
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill("SIGTERM");
  await Promise.all(
    children.map(async (c) => {
      const t = sleep(graceMs).then(() => "timeout" as const);
      if ((await Promise.race([c.exited, t])) === "timeout") {
        c.proc.kill("SIGKILL");
        await c.exited;
      }
    }),
  );
}

export async function assertPortsFree(ports: number[]): Promise<void> {
  for (const port of ports) {
    await new Promise<void>((res, rej) => {
      const s = createServer();
      s.once("error", () => rej(new Error(`port 127.0.0.1:${port} is in use; pick other ports (see --help)`)));
      s.listen(port, "127.0.0.1", () => s.close(() => res()));
    });
  }
}

function cluster(dir: string, children: Child[], endpoints: string[]): LocalCluster {
  return {
    endpoints,
    dir,
    pids: Object.fromEntries(children.map((c) => [c.name, c.proc.pid ?? -1])),
    exited: () =>
      Object.fromEntries(
        children
          .filter((c) => c.proc.exitCode !== null || c.proc.signalCode !== null)
          .map((c) => [c.name, String(c.proc.exitCode ?? c.proc.signalCode)]),
      ),
    async stop(keepData = false) {
      await stopAll(children);
      if (!keepData) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Fails fast when a child dies while we wait for readiness. */
export function watchEarlyExit(lc: LocalCluster, children: Child[]): Promise<never> {
  return new Promise((_, rej) => {
    for (const c of children)
      void c.exited.then((code) =>
        rej(new Error(`${c.name} exited early (code ${code}); see ${join(lc.dir, c.name + ".log")}`)),
      );
  });
}

export interface EtcdClusterOptions {
  clientPort: number; // members use clientPort, +1, +2
  peerPort: number;
  members: number;
  bin: string;
}

export async function startEtcd(o: EtcdClusterOptions): Promise<{ cluster: LocalCluster; died: Promise<never> }> {
  const ports = Array.from({ length: o.members }, (_, i) => [o.clientPort + i, o.peerPort + i]).flat();
  await assertPortsFree(ports);
  const dir = mkdtempSync(join(tmpdir(), "bench-etcd-"));
  const token = `bench-${process.pid}-${Date.now()}`;
  const names = Array.from({ length: o.members }, (_, i) => `m${i + 1}`);
  const initial = names.map((n, i) => `${n}=http://127.0.0.1:${o.peerPort + i}`).join(",");
  const children = names.map((n, i) =>
    start(dir, n, o.bin, [
      `--name=${n}`,
      `--data-dir=${join(dir, n)}`,
      `--listen-client-urls=http://127.0.0.1:${o.clientPort + i}`,
      `--advertise-client-urls=http://127.0.0.1:${o.clientPort + i}`,
      `--listen-peer-urls=http://127.0.0.1:${o.peerPort + i}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${o.peerPort + i}`,
      `--initial-cluster=${initial}`,
      `--initial-cluster-state=new`,
      `--initial-cluster-token=${token}`,
      `--logger=zap`,
      `--log-level=warn`,
    ]),
  );
  const lc = cluster(
    dir,
    children,
    names.map((_, i) => `127.0.0.1:${o.clientPort + i}`),
  );
  return { cluster: lc, died: watchEarlyExit(lc, children) };
}

/** The repository root (holds dist/src/cli), found from this file in bench/ or dist/bench/. */
function repoRoot(): string {
  let dir = resolve(fileURLToPath(import.meta.url), "..");
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "dist", "src", "cli"))) return dir;
    dir = resolve(dir, "..");
  }
  throw new Error("cannot find the repository root with dist/src/cli (run `npx tsc -p .` first)");
}

export interface TinyKvClusterOptions {
  schedulerPort: number;
  storePort: number; // stores use storePort, +1, +2
  stores: number;
  /** 1-based store indexes to run with --cpu-prof, writing into profDir. */
  profileStores?: number[];
  profDir?: string;
  logLevel: string;
  config?: string;
}

export async function startTinyKv(
  o: TinyKvClusterOptions,
): Promise<{ cluster: LocalCluster; died: Promise<never>; scheduler: string }> {
  await assertPortsFree([o.schedulerPort, ...Array.from({ length: o.stores }, (_, i) => o.storePort + i)]);
  const root = repoRoot();
  const dir = mkdtempSync(join(tmpdir(), "bench-tinykv-"));
  const scheduler = `127.0.0.1:${o.schedulerPort}`;
  const env = { ...process.env, LOG_LEVEL: o.logLevel };
  const children: Child[] = [
    start(
      dir,
      "scheduler",
      process.execPath,
      [
        join(root, "dist/src/cli/tinyscheduler.js"),
        `--addr=${scheduler}`,
        `--data-dir=${join(dir, "scheduler")}`,
        "--status-addr=",
        `--log-level=${o.logLevel}`,
      ],
      env,
    ),
  ];
  // The first store bootstraps the cluster; give the scheduler a moment to listen first.
  await sleep(300);
  for (let i = 0; i < o.stores; i++) {
    const prof = o.profileStores?.includes(i + 1) ? ["--cpu-prof", `--cpu-prof-dir=${o.profDir ?? dir}`] : [];
    const args = [
      ...prof,
      join(root, "dist/src/cli/tinykv-server.js"),
      `--path=${join(dir, `store${i + 1}`)}`,
      `--addr=127.0.0.1:${o.storePort + i}`,
      `--scheduler=${scheduler}`,
      `--log-level=${o.logLevel}`,
    ];
    if (o.config) args.push(`--config=${o.config}`);
    children.push(start(dir, `store${i + 1}`, process.execPath, args, env));
    if (i === 0) await sleep(500);
  }
  const lc = cluster(dir, children, [scheduler]);
  return { cluster: lc, died: watchEarlyExit(lc, children), scheduler };
}
