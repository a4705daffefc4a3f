/**
 * `tinykv-ctl restore --from DIR`: verifies every file's checksum first (a corrupt backup loads
 * nothing), refuses a cluster that holds any key, then writes transactional data back in
 * transactions of TXN_BATCH keys at new timestamps and raw data with raw puts.
 */
import type { KvClient } from "../../client/client.js";
import { showBytes } from "../../client/display.js";
import type { BackupFileEntry, BackupManifest } from "./backup-format.js";
import { readManifest, readPairs, RAW_CFS, verifyFile } from "./backup-format.js";

/** Keys per restore transaction: big enough to amortize 2PC, small enough to stay far below message limits. */
const TXN_BATCH = 256;
/** Restore transactions in flight at once. */
const TXN_CONCURRENCY = 4;
const RAW_BATCH = 256;
/** At most one progress line per file this often, so a large restore does not flood stderr. */
const PROGRESS_EVERY_MS = 1000;

/** Reports `done/total` for one file: the first and last batch always, others at most once a PROGRESS_EVERY_MS. */
function fileProgress(what: string, total: number, progress: (line: string) => void): (done: number) => void {
  let last = 0;
  return (done) => {
    const now = Date.now();
    if (done < total && now - last < PROGRESS_EVERY_MS) return;
    last = now;
    progress(`restore: ${what} ${done}/${total} keys`);
  };
}

export class ClusterNotEmptyError extends Error {
  constructor(what: string, key: Buffer) {
    super(
      `restore loads only into an empty cluster, and this one holds ${what} key ${showBytes(key)}; start a fresh cluster (new data dirs) and restore into it`,
    );
    this.name = "ClusterNotEmptyError";
  }
}

async function requireEmpty(kv: KvClient): Promise<void> {
  const snapshot = kv.snapshotAt(await kv.tso());
  const [txnKey] = await snapshot.scan(Buffer.alloc(0), Buffer.alloc(0), 1);
  if (txnKey) throw new ClusterNotEmptyError("the transactional", txnKey.key);
  for (const cf of RAW_CFS) {
    const [rawKey] = await kv.scan(Buffer.alloc(0), Buffer.alloc(0), 1, cf);
    if (rawKey) throw new ClusterNotEmptyError(`the raw (cf ${cf})`, rawKey.key);
  }
}

async function restoreTxnFile(
  kv: KvClient,
  dir: string,
  file: BackupFileEntry,
  progress: (line: string) => void,
): Promise<void> {
  let batch: { key: Buffer; value: Buffer }[] = [];
  const inFlight = new Set<Promise<void>>();
  let done = 0;
  let failure: unknown;
  const report = fileProgress("transactional", file.count, progress);
  const commitBatch = (pairs: { key: Buffer; value: Buffer }[]) => {
    const p = (async () => {
      const txn = await kv.begin();
      for (const { key, value } of pairs) txn.put(key, value);
      await txn.commit();
      done += pairs.length;
      report(done);
    })().catch((err: unknown) => {
      failure ??= err;
    });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  for await (const pair of readPairs(dir, file)) {
    if (failure) break;
    batch.push(pair);
    if (batch.length < TXN_BATCH) continue;
    commitBatch(batch);
    batch = [];
    if (inFlight.size >= TXN_CONCURRENCY) await Promise.race(inFlight);
  }
  if (!failure && batch.length > 0) commitBatch(batch);
  await Promise.all(inFlight);
  if (failure) throw failure;
}

async function restoreRawFile(
  kv: KvClient,
  dir: string,
  file: BackupFileEntry,
  progress: (line: string) => void,
): Promise<void> {
  let batch: { key: Buffer; value: Buffer; ttlSeconds?: number }[] = [];
  let done = 0;
  let expired = 0;
  const report = fileProgress(`raw cf ${file.cf}`, file.count, progress);
  const flush = async () => {
    await kv.batchPut(batch, file.cf);
    done += batch.length;
    batch = [];
    report(done);
  };
  for await (const { key, value, expiresAtMs } of readPairs(dir, file)) {
    if (expiresAtMs === undefined) batch.push({ key, value });
    else {
      // The time it had left, counted from now: a restored key expires when the original would have.
      const ttlSeconds = Math.ceil((expiresAtMs - Date.now()) / 1000);
      if (ttlSeconds <= 0) {
        expired++;
        continue;
      }
      batch.push({ key, value, ttlSeconds });
    }
    if (batch.length >= RAW_BATCH) await flush();
  }
  if (batch.length > 0) await flush();
  if (expired > 0) progress(`restore: raw cf ${file.cf}: ${expired} keys had expired since the backup, left out`);
}

export async function restore(kv: KvClient, dir: string, progress: (line: string) => void): Promise<BackupManifest> {
  const manifest = readManifest(dir);
  for (const file of manifest.files) await verifyFile(dir, file);
  progress(
    `restore: ${manifest.files.length} files verified (backup ts ${manifest.backupTs} of cluster ${manifest.clusterId})`,
  );
  await requireEmpty(kv);
  for (const file of manifest.files) {
    if (file.count === 0) continue;
    if (file.kind === "txn") await restoreTxnFile(kv, dir, file, progress);
    else await restoreRawFile(kv, dir, file, progress);
  }
  progress(`restore: done: ${manifest.files.map((f) => `${f.name} ${f.count}`).join(", ")}`);
  return manifest;
}
