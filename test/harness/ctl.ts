import { spawn } from "node:child_process";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import type { CtlFlags } from "../../src/cli/ctl/command.js";
import { ctlCommands } from "../../src/cli/ctl/commands.js";
import { CtlSession } from "../../src/cli/ctl/session.js";
import { runShell } from "../../src/cli/ctl/shell.js";

export interface CtlTarget {
  scheduler: string;
  /** The scheduler's status API; an address that refuses connections when the test needs none. */
  status?: string;
  timeoutMs?: number;
}

function session(target: CtlTarget, out: string[]): CtlSession {
  return new CtlSession({
    scheduler: target.scheduler,
    statusAddr: target.status ?? "127.0.0.1:1",
    timeoutMs: target.timeoutMs ?? 10_000,
    out: (line) => out.push(line + "\n"),
  });
}

/** Runs tinykv-ctl's shell in this process on `script`, as a pipe would feed it: what it printed and how many lines failed. */
export async function ctlShell(
  target: CtlTarget,
  script: string,
): Promise<{ failures: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const s = session(target, out);
  try {
    const failures = await runShell(s, ctlCommands, {
      input: Readable.from([script]),
      errOut: (line) => err.push(line + "\n"),
      tty: false,
    });
    return { failures, out: out.join(""), err: err.join("") };
  } finally {
    s.close();
  }
}

/** Runs one tinykv-ctl command in this process: what it printed, or the error it threw. */
export async function ctlRun(
  target: CtlTarget,
  words: string[],
  flags: CtlFlags = {},
): Promise<{ out: string; error?: Error }> {
  const out: string[] = [];
  const s = session(target, out);
  try {
    await ctlCommands.run(s, words, flags);
    return { out: out.join("") };
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    return { out: out.join(""), error };
  } finally {
    s.close();
  }
}

const CTL_BIN = fileURLToPath(new URL("../../dist/src/cli/tinykv-ctl.js", import.meta.url));
const CTL_EXIT_DEADLINE_MS = 30_000;

/** Runs the built tinykv-ctl binary (dist, as the other process tests) with `stdin` piped into it; resolves with its exit code and output. */
export function ctl(args: string[], stdin = ""): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CTL_BIN, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      reject(
        new Error(
          `tinykv-ctl ${args.join(" ")} did not exit within ${CTL_EXIT_DEADLINE_MS} ms; stdout: ${out}; stderr: ${err}`,
        ),
      );
    }, CTL_EXIT_DEADLINE_MS);
    p.on("error", reject);
    p.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
    p.stdin.end(stdin);
  });
}
