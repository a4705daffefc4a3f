import { describe, expect, it } from "vitest";
import type { FileLayer } from "../../../src/kv/engine/index.js";
import { FilesCrashedError, SimDisk, SimFileError, SyncFailedError } from "../../../src/kv/engine/index.js";
import { seededRng, testSeed } from "../../harness/rng.js";

/**
 * The simulated disk's plain files (snapshot files): POSIX's durability and no more. Bytes are
 * durable at fsync, names at a directory sync; a power loss keeps a seeded prefix of the rest; a
 * crash keeps everything but ends the dead process's mount. Seeded: SEED=<n> replays.
 */

const b = (s: string) => Buffer.from(s);

async function readAll(files: FileLayer, path: string): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of files.read(path, 4)) parts.push(chunk);
  return Buffer.concat(parts).toString();
}

async function writeFile(files: FileLayer, path: string, chunks: string[], sync: boolean): Promise<void> {
  const w = await files.create(path);
  for (const c of chunks) await w.write(b(c));
  if (sync) await w.sync();
  await w.close();
}

describe("simulated disk: files", () => {
  it("reads back what was written, in chunks, and lists, renames and removes like a file system", async () => {
    const files = new SimDisk({ name: "store1" }).files.mount();
    files.mkdir("snap");
    await writeFile(files, "snap/a", ["hello ", "world"], false);
    expect(await readAll(files, "snap/a")).toBe("hello world");
    expect(files.stat("snap/a")).toEqual({ size: 11 });
    files.rename("snap/a", "snap/b");
    expect(files.list("snap")).toEqual(["b"]);
    expect(files.stat("snap/a")).toBeUndefined();
    files.remove("snap/b");
    files.remove("snap/b"); // a second remove is no error, as rm -f
    expect(files.list("snap")).toEqual([]);
    await expect(readAll(files, "snap/b")).rejects.toBeInstanceOf(SimFileError);
    await expect(files.create("nodir/x")).rejects.toThrow(/ENOENT/);
  });

  it("keeps fsynced bytes and a prefix of the rest at a power loss; a name only once its directory is synced", async () => {
    const seed = testSeed();
    const rng = seededRng(seed);
    const seenKept = new Set<number>();
    for (let round = 0; round < 30; round++) {
      const disk = new SimDisk({ name: "store1" });
      const files = disk.files.mount();
      files.mkdir("snap");
      const w = await files.create("snap/f");
      await w.write(b("durable"));
      await w.sync();
      await files.syncDir("snap");
      await w.write(b("-torn"));
      await w.close();
      const lostName = await files.create("snap/unsynced-name");
      await lostName.write(b("x"));
      await lostName.sync();
      await lostName.close();

      const report = await disk.powerLoss(rng);
      const after = disk.files.mount();
      const content = await readAll(after, "snap/f");
      expect(
        content.startsWith("durable"),
        `seed ${seed}: fsynced bytes survive (got ${JSON.stringify(content)})`,
      ).toBe(true);
      expect("durable-torn".startsWith(content), `seed ${seed}: what survives is a prefix`).toBe(true);
      seenKept.add(content.length);
      const entries = report.find((r) => r.file.endsWith("directory entries"));
      expect(entries?.unsynced, `seed ${seed}: one name was never synced`).toBe(1);
      expect(
        after.stat("snap/unsynced-name") !== undefined,
        `seed ${seed}: the unsynced name survives iff the report says so`,
      ).toBe(entries!.kept === 1);
    }
    expect(seenKept.size, `seed ${seed}: power losses tear the unsynced tail at different places`).toBeGreaterThan(1);
  });

  it("may undo a rename and bring a removed file back after a power loss, unless the directory was synced", async () => {
    const undone = { rename: 0, remove: 0 };
    for (const pick of [0, 0.99]) {
      const disk = new SimDisk();
      const files = disk.files.mount();
      files.mkdir("snap");
      await writeFile(files, "snap/tmp", ["data"], true);
      await writeFile(files, "snap/old", ["old"], true);
      await files.syncDir("snap");
      files.rename("snap/tmp", "snap/final");
      files.remove("snap/old");
      await disk.powerLoss(() => pick);
      const after = disk.files.mount();
      if (after.stat("snap/tmp")) undone.rename++;
      if (after.stat("snap/old")) undone.remove++;
      expect(after.list("snap").length, "the file is under one name or the other").toBe(after.stat("snap/old") ? 2 : 1);
    }
    expect(undone, "a power loss keeping none of the journal undoes both; one keeping all, neither").toEqual({
      rename: 1,
      remove: 1,
    });

    const disk = new SimDisk();
    const files = disk.files.mount();
    files.mkdir("snap");
    await writeFile(files, "snap/tmp", ["data"], true);
    files.rename("snap/tmp", "snap/final");
    await files.syncDir("snap");
    await disk.powerLoss(() => 0);
    expect(disk.files.mount().list("snap"), "a synced rename is durable").toEqual(["final"]);
  });

  it("keeps every byte and name at a process crash, but refuses the dead process's calls and open files", async () => {
    const disk = new SimDisk({ name: "store2" });
    const files = disk.files.mount();
    files.mkdir("snap");
    const open = await files.create("snap/open");
    await open.write(b("before"));
    await disk.crash();
    await expect(open.write(b("after"))).rejects.toBeInstanceOf(FilesCrashedError);
    expect(() => files.list("snap")).toThrow(FilesCrashedError);
    expect(() => files.remove("snap/open")).toThrow(/store2: the process crashed/);
    const restarted = disk.files.mount();
    expect(await readAll(restarted, "snap/open"), "the page cache survives a crash").toBe("before");
  });

  it("completes file I/O only through the injected delay, with the disk's latency and fsync faults", async () => {
    const waits: number[] = [];
    const release: Array<() => void> = [];
    const disk = new SimDisk({
      delay: (ms) => {
        waits.push(ms);
        return new Promise((resolve) => release.push(resolve));
      },
    });
    const runPending = async () => {
      for (let i = 0; i < 10; i++) {
        await new Promise<void>((r) => setImmediate(r));
        for (const r of release.splice(0)) r();
      }
    };
    disk.faults.writeLatencyMs = (w) => (w.sync ? 30 : 5);
    const files = disk.files.mount();
    files.mkdir("snap");
    let done = false;
    const writing = writeFile(files, "snap/f", ["abc"], true).then(() => (done = true));
    await new Promise<void>((r) => setImmediate(r));
    expect(done, "nothing completes before the simulation's clock says so").toBe(false);
    await runPending();
    await writing;
    expect(waits, "open (0), write (5 ms), fsync (30 ms)").toEqual([0, 5, 30]);

    disk.faults.failSync = (file) => file.startsWith("snap/");
    const w = await Promise.all([files.create("snap/g"), runPending()]).then(([x]) => x);
    const failing = expect(w.sync()).rejects.toBeInstanceOf(SyncFailedError);
    await runPending();
    await failing;
  });
});
