import { spawn } from "node:child_process";

/** Runs tinykv-ctl from source (via tsx) with `stdin` piped into it; resolves with its exit code and output. */
export function ctl(args: string[], stdin = ""): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", "tsx", "src/cli/tinykv-ctl.ts", ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`tinykv-ctl ${args.join(" ")} did not exit within 15 s; stdout: ${out}; stderr: ${err}`));
    }, 15_000);
    p.on("error", reject);
    p.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
    p.stdin.end(stdin);
  });
}
