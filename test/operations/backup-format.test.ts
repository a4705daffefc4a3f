import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  BACKUP_FORMAT_VERSION,
  BackupFileWriter,
  BackupFormatError,
  MANIFEST_FILE,
  readManifest,
  readPairs,
  verifyFile,
} from "../../src/cli/ctl/backup-format.js";
import { tempDir } from "../harness/wait.js";

/** Writes a one-file backup into a new directory under `parent` and returns it. */
function writeBackup(
  parent: string,
  pairs: [string, string][],
  edit: (m: Record<string, unknown>) => void = () => {},
): string {
  const dir = mkdtempSync(join(parent, "b-"));
  const w = new BackupFileWriter(dir, "txn.jsonl", "txn", "");
  for (const [k, v] of pairs) w.add(Buffer.from(k), Buffer.from(v));
  const manifest: Record<string, unknown> = {
    formatVersion: BACKUP_FORMAT_VERSION,
    clusterId: "1",
    backupTs: "42",
    createdAt: new Date(0).toISOString(),
    rawConsistency: "not point-in-time",
    regions: [],
    files: [w.finish()],
  };
  edit(manifest);
  writeFileSync(join(dir, MANIFEST_FILE), JSON.stringify(manifest));
  return dir;
}

async function collect(dir: string) {
  const m = readManifest(dir);
  const out: string[] = [];
  for (const f of m.files) {
    await verifyFile(dir, f);
    for await (const p of readPairs(dir, f)) out.push(`${p.key}=${p.value}`);
  }
  return out;
}

describe("backup files", () => {
  const dir = tempDir("tinykv-backup-format-");
  afterAll(() => dir.cleanup());

  it("round-trips binary keys and values, checksummed", async () => {
    expect(
      await collect(
        writeBackup(dir.path, [
          ["a", "1"],
          ["b\u0000\n", 'x"y'],
        ]),
      ),
    ).toEqual(["a=1", 'b\u0000\n=x"y']);
  });

  it("keeps a raw pair's expiry and refuses one that is not a raw pair's expiry", async () => {
    const d = mkdtempSync(join(dir.path, "e-"));
    const w = new BackupFileWriter(d, "raw-default.jsonl", "raw", "default");
    w.add(Buffer.from("t"), Buffer.from("1"), 1_800_000_000_000);
    w.add(Buffer.from("p"), Buffer.from("2"));
    const entry = w.finish();
    const got = [];
    for await (const p of readPairs(d, entry)) got.push([p.key.toString(), p.expiresAtMs]);
    expect(got).toEqual([
      ["t", 1_800_000_000_000],
      ["p", undefined],
    ]);
    const bad = (name: string, kind: "txn" | "raw", line: string) => {
      writeFileSync(join(d, name), `${line}\n`);
      return readPairs(d, { ...entry, name, kind, count: 1 });
    };
    const drain = async (it: AsyncGenerator<unknown>) => {
      for await (const _ of it);
    };
    await expect(drain(bad("txn-e.jsonl", "txn", '{"k":"YQ==","v":"MQ==","e":5}'))).rejects.toThrow(/"e" must be/);
    await expect(drain(bad("raw-e.jsonl", "raw", '{"k":"YQ==","v":"MQ==","e":"soon"}'))).rejects.toThrow(/"e" must be/);
    await expect(drain(bad("raw-0.jsonl", "raw", '{"k":"YQ==","v":"MQ==","e":-1}'))).rejects.toThrow(/"e" must be/);
  });

  it("refuses a changed byte, naming the file", async () => {
    const b = writeBackup(dir.path, [["a", "1"]]);
    const path = join(b, "txn.jsonl");
    writeFileSync(path, readFileSync(path, "utf8").replace('"k":"YQ=="', '"k":"Yg=="'));
    await expect(collect(b)).rejects.toThrow(/^backup file txn\.jsonl: is corrupt/);
  });

  it("refuses a missing manifest, another format version, a file name outside the directory, a missing file", async () => {
    expect(() => readManifest(dir.path)).toThrow(/manifest\.json: not found/);
    const future = writeBackup(dir.path, [], (m) => (m.formatVersion = 99));
    expect(() => readManifest(future)).toThrow(/format version 99; this tinykv-ctl reads version 1/);
    const escaping = writeBackup(dir.path, [], (m) => ((m.files as { name: string }[])[0]!.name = "../../etc/passwd"));
    expect(() => readManifest(escaping)).toThrow(BackupFormatError);
    const missing = writeBackup(dir.path, [], (m) => ((m.files as { name: string }[])[0]!.name = "gone.jsonl"));
    await expect(collect(missing)).rejects.toThrow(/backup file gone\.jsonl: is listed in the manifest but missing/);
  });
});
