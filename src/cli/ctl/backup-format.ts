/**
 * The on-disk layout of a tinykv-ctl backup: a manifest plus one JSON-lines file per key space,
 * each line {"k": base64, "v": base64}, and for a raw pair with a ttl "e": its expiry in ms since the
 * epoch (a backup without "e" reads as before). Readers treat every byte as untrusted: the manifest is
 * validated field by field and every file is checked against its sha256 before anything loads.
 */
import { createHash } from "node:crypto";
import { closeSync, createReadStream, existsSync, fsyncSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import * as readline from "node:readline";

export const BACKUP_FORMAT_VERSION = 1;
export const MANIFEST_FILE = "manifest.json";
/** The raw API's column families as clients name them (stored apart from transactional data). */
export const RAW_CFS = ["default", "lock", "write"] as const;

export interface BackupFileEntry {
  name: string;
  /** "txn": committed transactional data as of backupTs; "raw": raw data, one CF, not point-in-time. */
  kind: "txn" | "raw";
  cf: string;
  count: number;
  bytes: number;
  sha256: string;
}

export interface BackupRegionEntry {
  id: string;
  startKey: string;
  endKey: string;
  txnKeys: number;
  rawKeys: number;
}

export interface BackupManifest {
  formatVersion: number;
  clusterId: string;
  backupTs: string;
  createdAt: string;
  rawConsistency: string;
  regions: BackupRegionEntry[];
  files: BackupFileEntry[];
}

/** The backup cannot be used: a missing or corrupt file, or a manifest this version cannot read. */
export class BackupFormatError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`backup file ${file}: ${reason}`);
    this.name = "BackupFormatError";
  }
}

/** One line of a data file. */
interface BackupPair {
  k: string;
  v: string;
  e?: number;
}

/** Appends key/value lines to one file, hashing as it goes; `finish` fsyncs and returns its entry. */
export class BackupFileWriter {
  private readonly fd: number;
  private readonly hash = createHash("sha256");
  private count = 0;
  private bytes = 0;

  constructor(
    dir: string,
    readonly name: string,
    private readonly kind: "txn" | "raw",
    private readonly cf: string,
  ) {
    this.fd = openSync(join(dir, name), "wx");
  }

  /** `expiresAtMs`: a raw pair's expiry (ms since the epoch), kept as "e" so restore puts it back with its ttl. */
  add(key: Buffer, value: Buffer, expiresAtMs?: number): void {
    const pair: BackupPair = { k: key.toString("base64"), v: value.toString("base64") };
    if (expiresAtMs !== undefined) pair.e = expiresAtMs;
    const line = Buffer.from(JSON.stringify(pair) + "\n");
    writeSync(this.fd, line);
    this.hash.update(line);
    this.count++;
    this.bytes += line.length;
  }

  finish(): BackupFileEntry {
    fsyncSync(this.fd);
    closeSync(this.fd);
    return {
      name: this.name,
      kind: this.kind,
      cf: this.cf,
      count: this.count,
      bytes: this.bytes,
      sha256: this.hash.digest("hex"),
    };
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function field<T>(
  file: string,
  obj: Record<string, unknown>,
  name: string,
  check: (v: unknown) => v is T,
  want: string,
): T {
  const v = obj[name];
  if (!check(v)) throw new BackupFormatError(file, `field ${name} must be ${want}, got ${JSON.stringify(v)}`);
  return v;
}
const isString = (v: unknown): v is string => typeof v === "string";
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Reads and validates DIR/manifest.json. */
export function readManifest(dir: string): BackupManifest {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) throw new BackupFormatError(MANIFEST_FILE, `not found in ${dir} (is it a tinykv-ctl backup?)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new BackupFormatError(MANIFEST_FILE, `not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(parsed)) throw new BackupFormatError(MANIFEST_FILE, "must hold a JSON object");
  const version = field(MANIFEST_FILE, parsed, "formatVersion", isCount, "an integer");
  if (version !== BACKUP_FORMAT_VERSION)
    throw new BackupFormatError(
      MANIFEST_FILE,
      `format version ${version}; this tinykv-ctl reads version ${BACKUP_FORMAT_VERSION}`,
    );
  const files = field(MANIFEST_FILE, parsed, "files", Array.isArray, "an array").map((f, i): BackupFileEntry => {
    if (!isObject(f)) throw new BackupFormatError(MANIFEST_FILE, `files[${i}] must be an object`);
    const name = field(MANIFEST_FILE, f, "name", isString, "a string");
    // A name from the manifest must not reach outside the backup directory.
    if (!/^[A-Za-z0-9._-]+$/.test(name) || name === MANIFEST_FILE)
      throw new BackupFormatError(MANIFEST_FILE, `files[${i}] has a bad name ${JSON.stringify(name)}`);
    const kind = field(
      MANIFEST_FILE,
      f,
      "kind",
      (v): v is "txn" | "raw" => v === "txn" || v === "raw",
      `"txn" or "raw"`,
    );
    const cf = field(MANIFEST_FILE, f, "cf", isString, "a string");
    if (kind === "raw" && !(RAW_CFS as readonly string[]).includes(cf))
      throw new BackupFormatError(MANIFEST_FILE, `files[${i}] names an unknown column family ${JSON.stringify(cf)}`);
    return {
      name,
      kind,
      cf,
      count: field(MANIFEST_FILE, f, "count", isCount, "a count"),
      bytes: field(MANIFEST_FILE, f, "bytes", isCount, "a byte count"),
      sha256: field(
        MANIFEST_FILE,
        f,
        "sha256",
        (v): v is string => isString(v) && /^[0-9a-f]{64}$/.test(v),
        "a sha256 in hex",
      ),
    };
  });
  return {
    formatVersion: version,
    clusterId: field(MANIFEST_FILE, parsed, "clusterId", isString, "a string"),
    backupTs: field(MANIFEST_FILE, parsed, "backupTs", isString, "a string"),
    createdAt: field(MANIFEST_FILE, parsed, "createdAt", isString, "a string"),
    rawConsistency: field(MANIFEST_FILE, parsed, "rawConsistency", isString, "a string"),
    regions: field(MANIFEST_FILE, parsed, "regions", Array.isArray, "an array") as BackupRegionEntry[],
    files,
  };
}

/** Checks a file's size and sha256 against its manifest entry. */
export async function verifyFile(dir: string, entry: BackupFileEntry): Promise<void> {
  const path = join(dir, entry.name);
  if (!existsSync(path)) throw new BackupFormatError(entry.name, "is listed in the manifest but missing");
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  const sum = hash.digest("hex");
  if (bytes !== entry.bytes || sum !== entry.sha256) {
    throw new BackupFormatError(
      entry.name,
      `is corrupt: ${bytes} bytes with sha256 ${sum}, the manifest says ${entry.bytes} bytes with sha256 ${entry.sha256}`,
    );
  }
}

/** The pairs of one verified file, in order, each line validated. */
export async function* readPairs(
  dir: string,
  entry: BackupFileEntry,
): AsyncGenerator<{ key: Buffer; value: Buffer; expiresAtMs?: number }> {
  const lines = readline.createInterface({ input: createReadStream(join(dir, entry.name)), crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n++;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw new BackupFormatError(entry.name, `line ${n} is not JSON: ${(err as Error).message}`);
    }
    if (
      !isObject(obj) ||
      !isString(obj.k) ||
      !isString(obj.v) ||
      !BASE64.test(obj.k) ||
      !BASE64.test(obj.v) ||
      obj.k === ""
    ) {
      throw new BackupFormatError(entry.name, `line ${n} is not {"k": base64 key, "v": base64 value}`);
    }
    const pair = { key: Buffer.from(obj.k, "base64"), value: Buffer.from(obj.v, "base64") };
    if (obj.e === undefined) {
      yield pair;
      continue;
    }
    if (entry.kind !== "raw" || !Number.isSafeInteger(obj.e) || (obj.e as number) <= 0)
      throw new BackupFormatError(entry.name, `line ${n}: "e" must be a raw pair's expiry, ms since the epoch`);
    yield { ...pair, expiresAtMs: obj.e as number };
  }
  if (n !== entry.count) throw new BackupFormatError(entry.name, `holds ${n} pairs, the manifest says ${entry.count}`);
}
