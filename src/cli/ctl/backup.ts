/**
 * `tinykv-ctl backup --to DIR`: transactional data as of one TSO timestamp (KvScan at that ts,
 * region by region, resolving locks as any reader does), then raw data region by region (RawScan,
 * each pair with its expiry when it has a ttl; not point-in-time: raw writes have no timestamps), then a manifest written last, so a backup
 * that stopped half way has none and restore refuses it. The cluster keeps serving throughout.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { KvClient } from "../../client/client.js";
import type { KvEntry } from "../../client/txn.js";
import type { BackupFileEntry, BackupManifest, BackupRegionEntry } from "./backup-format.js";
import { BACKUP_FORMAT_VERSION, BackupFileWriter, MANIFEST_FILE, RAW_CFS } from "./backup-format.js";

/** Pairs per scan call: well under the servers' scan limit and gRPC's message limit. */
const PAGE = 512;

export const RAW_CONSISTENCY =
  "raw data was scanned region by region after the transactional snapshot; it is not a point-in-time copy (raw writes carry no timestamp)";

export class BackupTargetError extends Error {
  constructor(dir: string, reason: string) {
    super(`backup --to ${dir}: ${reason}`);
    this.name = "BackupTargetError";
  }
}

/** Every pair in [start, end), `scanPage` called page by page from the last key seen. */
async function scanRange(
  start: Buffer,
  end: Buffer,
  scanPage: (from: Buffer, end: Buffer, limit: number) => Promise<KvEntry[]>,
  each: (p: KvEntry) => void,
): Promise<number> {
  let cursor = start;
  let n = 0;
  for (;;) {
    const page = await scanPage(cursor, end, PAGE);
    for (const p of page) each(p);
    n += page.length;
    if (page.length < PAGE) return n;
    cursor = Buffer.concat([page[page.length - 1]!.key, Buffer.alloc(1)]);
  }
}

function prepareDir(dir: string): void {
  if (existsSync(dir) && readdirSync(dir).length > 0)
    throw new BackupTargetError(dir, "the directory exists and is not empty; choose a new one");
  mkdirSync(dir, { recursive: true });
}

function writeManifest(dir: string, manifest: BackupManifest): void {
  const tmp = join(dir, `${MANIFEST_FILE}.tmp`);
  const fd = openSync(tmp, "w");
  writeSync(fd, JSON.stringify(manifest, null, 2) + "\n");
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, join(dir, MANIFEST_FILE));
}

export async function backup(kv: KvClient, dir: string, progress: (line: string) => void): Promise<BackupManifest> {
  prepareDir(dir);
  const backupTs = await kv.tso();
  const regions = await kv.getAllRegions();
  progress(
    `backup: snapshot at ts ${backupTs}, ${regions.length} region${regions.length === 1 ? "" : "s"}, into ${dir}`,
  );
  const entries: BackupRegionEntry[] = regions.map(({ region }) => ({
    id: region.id.toString(),
    startKey: region.startKey.toString("hex"),
    endKey: region.endKey.toString("hex"),
    txnKeys: 0,
    rawKeys: 0,
  }));
  const files: BackupFileEntry[] = [];

  // The region list is a snapshot of routing only: a range that split since is still scanned whole.
  const snapshot = kv.snapshotAt(backupTs);
  const txn = new BackupFileWriter(dir, "txn.jsonl", "txn", "");
  for (const [i, r] of regions.entries()) {
    const n = await scanRange(
      r.region.startKey,
      r.region.endKey,
      (from, end, limit) => snapshot.scan(from, end, limit),
      (p) => txn.add(p.key, p.value),
    );
    entries[i]!.txnKeys = n;
    progress(`backup: transactional, region ${i + 1}/${regions.length} (id ${r.region.id}): ${n} keys`);
  }
  files.push(txn.finish());

  for (const cf of RAW_CFS) {
    const raw = new BackupFileWriter(dir, `raw-${cf}.jsonl`, "raw", cf);
    for (const [i, r] of regions.entries()) {
      const n = await scanRange(
        r.region.startKey,
        r.region.endKey,
        (from, end, limit) => kv.scan(from, end, limit, cf),
        (p) => raw.add(p.key, p.value, p.expiresAtMs),
      );
      entries[i]!.rawKeys += n;
      if (n > 0) progress(`backup: raw cf ${cf}, region ${i + 1}/${regions.length} (id ${r.region.id}): ${n} keys`);
    }
    files.push(raw.finish());
  }

  const manifest: BackupManifest = {
    formatVersion: BACKUP_FORMAT_VERSION,
    clusterId: kv.clusterId.toString(),
    backupTs: backupTs.toString(),
    createdAt: new Date().toISOString(),
    rawConsistency: RAW_CONSISTENCY,
    regions: entries,
    files,
  };
  writeManifest(dir, manifest);
  const counts = files.map((f) => `${f.name} ${f.count}`).join(", ");
  progress(`backup: done at ts ${backupTs}: ${counts}`);
  return manifest;
}
