import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { TinyKvRpc } from "../../src/client/kv-rpc.js";
import { tempDir, waitFor } from "../harness/wait.js";
import { freePort } from "../harness/ports.js";

const SERVER = fileURLToPath(new URL("../../dist/src/cli/tinykv-server.js", import.meta.url));

function start(args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [SERVER, "--status-addr=", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** The real binary (built by `make build`), as a user runs it. */
describe("tinykv-server --standalone as a process", () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());

  it("keeps data across a stop and a start on the same --path, and stops cleanly on SIGTERM", async () => {
    const port = await freePort();
    const addr = `127.0.0.1:${port}`;
    const args = ["--standalone", `--path=${dir.path}`, `--addr=${addr}`, "--log-level=warn"];
    let server = start(args);
    let client = new TinyKvRpc(addr, 2000);
    await waitFor(async () => (await client.rawGet({ key: Buffer.from("x") })).notFound, {
      timeoutMs: 15_000,
      message: `server did not answer on ${addr}; output: ${server.output()}`,
    });
    for (let i = 0; i < 50; i++) await client.rawPut({ key: Buffer.from(`p${i}`), value: Buffer.from(`v${i}`) });
    client.close();
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);

    server = start(args);
    client = new TinyKvRpc(addr, 2000);
    const res = await waitFor(async () => client.rawScan({ startKey: Buffer.from("p"), limit: 100 }), {
      timeoutMs: 15_000,
      message: `restarted server did not answer; output: ${server.output()}`,
    });
    expect(res.kvs.length).toBe(50);
    expect((await client.rawGet({ key: Buffer.from("p7") })).value.toString()).toBe("v7");

    // A second server on the same data dir is refused with one clear line.
    const other = start(["--standalone", `--path=${dir.path}`, `--addr=127.0.0.1:${await freePort()}`]);
    expect(await other.exited).toBe(1);
    expect(other.output()).toMatch(/locked by another process/);

    // And one on a port in use.
    const busy = tempDir();
    const clash = start(["--standalone", `--path=${busy.path}`, `--addr=${addr}`]);
    expect(await clash.exited).toBe(1);
    expect(clash.output()).toMatch(/address already in use/);
    busy.cleanup();

    client.close();
    server.child.kill("SIGINT");
    expect(await server.exited).toBe(0);
  });

  it("rejects an unknown flag with a one-line error and exit code 2", async () => {
    const bad = start(["--no-such-flag"]);
    expect(await bad.exited).toBe(2);
    expect(bad.output().trim().split("\n")).toHaveLength(1);
    expect(bad.output()).toMatch(/Unknown option '--no-such-flag'/);
  });
});
