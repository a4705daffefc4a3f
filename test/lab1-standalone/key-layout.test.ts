import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { startStandaloneServer } from "../../src/cli/standalone-node.js";
import { CF_DEFAULT, Engine, EngineOpenError } from "../../src/kv/engine/index.js";
import { silentLogger } from "../../src/util/logger.js";
import { freePort } from "../harness/ports.js";
import { tempDir } from "../harness/wait.js";

const SERVER = fileURLToPath(new URL("../../dist/src/cli/tinykv-server.js", import.meta.url));

/** A kv engine as the previous layout left it: raw data in CF default, no layout marker. */
async function writeOldLayoutDir(path: string): Promise<void> {
  const kv = await Engine.open(join(path, "kv"));
  await kv.newBatch().put(CF_DEFAULT, Buffer.from("raw-key"), Buffer.from("raw-value")).write(true);
  await kv.close();
}

/**
 * Data dirs of the old layout (raw and transactional keys in the same CFs, not always told
 * apart) are refused with one clear line instead of being misread.
 */
describe("a data dir written with the old key layout", () => {
  const dir = tempDir("tinykv-layout-");
  const children: ChildProcess[] = [];
  // A server that wrongly starts must not outlive the test.
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    dir.cleanup();
  });

  it("is refused by the standalone server; a fresh dir starts, and starts again", async () => {
    const old = join(dir.path, "old");
    await writeOldLayoutDir(old);
    const err = await startStandaloneServer({ path: old, addr: "127.0.0.1:0", log: silentLogger }).then(
      async (node) => {
        await node.stop();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err, "the old dir must be refused").toBeInstanceOf(EngineOpenError);
    expect((err as Error).message).toMatch(
      /^cannot open data dir .*old\/kv: it was written by an older tinykv-ts whose raw and transactional keys shared column families/,
    );

    const fresh = join(dir.path, "fresh");
    for (let i = 0; i < 2; i++) {
      const node = await startStandaloneServer({ path: fresh, addr: "127.0.0.1:0", log: silentLogger });
      await node.stop();
    }
  });

  it("makes tinykv-server exit 1 with one error line", async () => {
    const old = join(dir.path, "old-process");
    await writeOldLayoutDir(old);
    const child = spawn(
      process.execPath,
      [
        SERVER,
        "--standalone",
        "--status-addr=",
        `--path=${old}`,
        `--addr=127.0.0.1:${await freePort()}`,
        "--log-level=warn",
      ],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    children.push(child);
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const code = await new Promise<number | string | null>((resolve) => {
      const timer = setTimeout(() => resolve("still running after 15 s"), 15_000);
      child.on("exit", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code, out).toBe(1);
    const lines = out.trim().split("\n");
    expect(lines, out).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^tinykv-server: error: cannot open data dir .*old-process\/kv: it was written by an older tinykv-ts/,
    );
  });
});
