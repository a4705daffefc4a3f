import { basename, dirname, normalize } from "node:path";
import { TinyKvError } from "../../util/errors.js";
import type { Rng } from "../../util/random.js";
import type { FileLayer, FileWriter } from "./file-layer.js";

/**
 * Plain files on the simulated disk (snapshot files), in memory, with the durability POSIX
 * promises and no more:
 * - a file's bytes are durable up to its last fsync; at a power loss it keeps those and a seeded
 *   prefix of the bytes written after them (none, some — a torn tail — or all);
 * - names (create, rename, remove) are durable once a `syncDir` commits them; until then they sit
 *   in a journal, and a power loss keeps a seeded prefix of it, in order. `syncDir` commits the
 *   whole journal (a file system commits its journal as one), so a removed file may come back and
 *   a renamed one may be back under its old name after a power loss;
 * - truncating an existing file (create over it) drops its old bytes at once and for good;
 * - directories themselves are durable as soon as made (the store makes its own at every start).
 * A process crash keeps everything (the page cache survives) but kills every mount made before
 * it: the dead process's open files and later calls fail. Every data operation completes through
 * the host's `wait`, i.e. as an event of the simulation's runtime; no timers or randomness of its own.
 */

/** What the simulated disk lends its files: latency and fsync faults, and the simulation's clock. */
export interface SimFilesHost {
  readonly name: string;
  /** Simulated ms a write (or, with `sync`, an fsync) takes, per the disk's latency fault. */
  latencyOf(write: { file: string; sync: boolean; ops: number; bytes: number }): number;
  /** Resolves after `ms` of simulated time (0: as a later event). */
  wait(ms: number): Promise<void>;
  /** The error a failing fsync of `file` raises while that fault is on. */
  syncFault(file: string): Error | undefined;
  /** The error a failing write to `path` raises while that fault is on. */
  writeFault(path: string): Error | undefined;
}

const REASONS = { ENOENT: "no such file or directory", EIO: "i/o error" } as const;

/** A file operation failed as the real one would: ENOENT (no such file), EIO (a disk fault). */
export class SimFileError extends TinyKvError {
  constructor(
    readonly code: keyof typeof REASONS,
    readonly path: string,
    op: string,
  ) {
    super(`${code}: ${REASONS[code]}, ${op} '${path}' (simulated disk)`);
  }
}

/** The process that made this mount crashed (or lost power): its files are gone with it. */
export class FilesCrashedError extends TinyKvError {
  constructor(readonly disk: string) {
    super(`${disk}: the process crashed; file operation refused`);
  }
}

/** What a power loss did to the files: per torn file (bytes) and to the journal of names (entries). */
export interface FilesPowerLoss {
  file: string;
  unsynced: number;
  kept: number;
  lost: number;
}

interface Inode {
  readonly id: number;
  parts: Buffer[];
  size: number;
  durableSize: number;
}

type NameOp =
  | { kind: "link"; path: string; inode: Inode }
  | { kind: "unlink"; path: string }
  | { kind: "rename"; from: string; to: string };

function applyNameOp(names: Map<string, Inode>, op: NameOp): void {
  if (op.kind === "link") names.set(op.path, op.inode);
  else if (op.kind === "unlink") names.delete(op.path);
  else {
    const inode = names.get(op.from);
    names.delete(op.from);
    if (inode) names.set(op.to, inode);
  }
}

function clean(path: string): string {
  const p = normalize(path);
  return p.length > 1 && p.endsWith("/") ? p.slice(0, -1) : p;
}

export class SimFiles {
  private readonly names = new Map<string, Inode>();
  private durableNames = new Map<string, Inode>();
  private journal: NameOp[] = [];
  private readonly dirs = new Set<string>(["."]);
  private inodes = 0;
  /** Bumped by every crash: a mount of an older generation belongs to a dead process. */
  private generation = 0;

  constructor(private readonly host: SimFilesHost) {}

  /** The file layer for a process starting now; a crash ends it. */
  mount(): FileLayer {
    return new SimFileMount(this, this.generation);
  }

  /** @internal */
  assertAlive(generation: number): void {
    if (generation !== this.generation) throw new FilesCrashedError(this.host.name);
  }

  /** The process dies: its mounts stop working; every byte and name it left stays. */
  crash(): void {
    this.generation++;
  }

  /** The power goes: the process dies and the files keep what the model above says, seeded by `rng`. */
  powerLoss(rng: Rng): FilesPowerLoss[] {
    this.crash();
    const report: FilesPowerLoss[] = [];
    const pending = this.journal.length;
    const keptOps = pending === 0 ? 0 : Math.floor(rng() * (pending + 1));
    for (const op of this.journal.slice(0, keptOps)) applyNameOp(this.durableNames, op);
    if (pending > 0)
      report.push({
        file: `${this.host.name} directory entries`,
        unsynced: pending,
        kept: keptOps,
        lost: pending - keptOps,
      });
    this.journal = [];
    this.names.clear();
    for (const [path, inode] of this.durableNames) this.names.set(path, inode);
    const survivors = new Map<number, { inode: Inode; path: string }>();
    for (const [path, inode] of this.names) if (!survivors.has(inode.id)) survivors.set(inode.id, { inode, path });
    for (const { inode, path } of [...survivors.values()].sort((a, b) => a.inode.id - b.inode.id)) {
      const unsynced = inode.size - inode.durableSize;
      if (unsynced === 0) continue;
      const kept = Math.floor(rng() * (unsynced + 1));
      truncate(inode, inode.durableSize + kept);
      inode.durableSize = inode.size;
      report.push({ file: path, unsynced, kept, lost: unsynced - kept });
    }
    this.durableNames = new Map(this.names);
    return report;
  }

  /** Names of every file, sorted (for tests and failure reports). */
  paths(): string[] {
    return [...this.names.keys()].sort();
  }

  /** Bytes written to files and names changed since they were last made durable. */
  unsynced(): { bytes: number; entries: number } {
    let bytes = 0;
    for (const inode of new Set(this.names.values())) bytes += inode.size - inode.durableSize;
    return { bytes, entries: this.journal.length };
  }

  // ---- the operations, for SimFileMount ----

  /** @internal */
  mkdir(dir: string): void {
    for (let d = clean(dir); !this.dirs.has(d); d = dirname(d)) this.dirs.add(d);
  }

  /** @internal */
  open(path: string): Inode {
    const p = clean(path);
    if (!this.dirs.has(dirname(p))) throw new SimFileError("ENOENT", p, "open");
    const existing = this.names.get(p);
    if (existing) {
      truncate(existing, 0);
      existing.durableSize = 0;
      return existing;
    }
    const inode: Inode = { id: ++this.inodes, parts: [], size: 0, durableSize: 0 };
    this.names.set(p, inode);
    this.journal.push({ kind: "link", path: p, inode });
    return inode;
  }

  /** @internal */
  lookup(path: string, op: string): Inode {
    const inode = this.names.get(clean(path));
    if (!inode) throw new SimFileError("ENOENT", clean(path), op);
    return inode;
  }

  /** @internal */
  rename(from: string, to: string): void {
    const f = clean(from);
    const t = clean(to);
    const inode = this.lookup(f, "rename");
    if (!this.dirs.has(dirname(t))) throw new SimFileError("ENOENT", t, "rename");
    if (f === t) return;
    this.names.delete(f);
    this.names.set(t, inode);
    this.journal.push({ kind: "rename", from: f, to: t });
  }

  /** @internal */
  stat(path: string): { size: number } | undefined {
    const inode = this.names.get(clean(path));
    return inode ? { size: inode.size } : undefined;
  }

  /** @internal */
  list(dir: string): string[] {
    const d = clean(dir);
    if (!this.dirs.has(d)) throw new SimFileError("ENOENT", d, "scandir");
    return [...this.names.keys()]
      .filter((p) => dirname(p) === d)
      .map((p) => basename(p))
      .sort();
  }

  /** @internal */
  remove(path: string): void {
    const p = clean(path);
    if (!this.names.delete(p)) return;
    this.journal.push({ kind: "unlink", path: p });
  }

  /** @internal Commits every name change so far (the journal is one). */
  commitNames(): void {
    for (const op of this.journal) applyNameOp(this.durableNames, op);
    this.journal = [];
  }

  /** @internal */
  get io(): SimFilesHost {
    return this.host;
  }
}

function truncate(inode: Inode, size: number): void {
  if (size >= inode.size) return;
  const whole = Buffer.concat(inode.parts, inode.size).subarray(0, size);
  inode.parts = size === 0 ? [] : [Buffer.from(whole)];
  inode.size = size;
}

/** Bytes [offset, offset + length) of a file (fewer at its end). */
function readAt(inode: Inode, offset: number, length: number): Buffer {
  const out: Buffer[] = [];
  let pos = 0;
  let want = Math.min(length, inode.size - offset);
  for (const part of inode.parts) {
    if (want <= 0) break;
    const end = pos + part.length;
    if (end > offset) {
      const from = Math.max(0, offset - pos);
      const slice = part.subarray(from, Math.min(part.length, from + want));
      out.push(slice);
      want -= slice.length;
      offset += slice.length;
    }
    pos = end;
  }
  return Buffer.concat(out);
}

/** One process's view of the files: every call checks the process is still alive. */
class SimFileMount implements FileLayer {
  constructor(
    private readonly files: SimFiles,
    private readonly generation: number,
  ) {}

  private alive(): void {
    this.files.assertAlive(this.generation);
  }

  mkdir(dir: string): void {
    this.alive();
    this.files.mkdir(dir);
  }

  async create(path: string): Promise<FileWriter> {
    this.alive();
    const inode = this.files.open(path);
    await this.files.io.wait(0);
    this.alive();
    return new SimFileWriter(this.files, this.generation, clean(path), inode);
  }

  async *read(path: string, chunkBytes: number): AsyncGenerator<Buffer> {
    this.alive();
    const inode = this.files.lookup(path, "open");
    for (let offset = 0; ; ) {
      await this.files.io.wait(0);
      this.alive();
      if (offset >= inode.size) return;
      const chunk = readAt(inode, offset, chunkBytes);
      offset += chunk.length;
      yield chunk;
    }
  }

  rename(from: string, to: string): void {
    this.alive();
    this.files.rename(from, to);
  }

  stat(path: string): { size: number } | undefined {
    this.alive();
    return this.files.stat(path);
  }

  list(dir: string): string[] {
    this.alive();
    return this.files.list(dir);
  }

  remove(path: string): void {
    this.alive();
    this.files.remove(path);
  }

  async syncDir(dir: string): Promise<void> {
    this.alive();
    await this.files.io.wait(this.files.io.latencyOf({ file: clean(dir), sync: true, ops: 0, bytes: 0 }));
    this.alive();
    const fault = this.files.io.syncFault(clean(dir));
    if (fault) throw fault;
    this.files.commitNames();
  }
}

class SimFileWriter implements FileWriter {
  private failed: Error | undefined;
  private closed = false;

  constructor(
    private readonly files: SimFiles,
    private readonly generation: number,
    private readonly path: string,
    private readonly inode: Inode,
  ) {}

  private writable(): void {
    this.files.assertAlive(this.generation);
    if (this.failed) throw this.failed;
    if (this.closed) throw new Error(`${this.path}: write after close`);
  }

  async write(chunk: Buffer): Promise<void> {
    this.writable();
    const copy = Buffer.from(chunk);
    await this.files.io.wait(this.files.io.latencyOf({ file: this.path, sync: false, ops: 1, bytes: copy.length }));
    this.writable();
    const fault = this.files.io.writeFault(this.path);
    if (fault) throw fault;
    this.inode.parts.push(copy);
    this.inode.size += copy.length;
  }

  async sync(): Promise<void> {
    this.writable();
    await this.files.io.wait(this.files.io.latencyOf({ file: this.path, sync: true, ops: 0, bytes: 0 }));
    this.writable();
    const fault = this.files.io.syncFault(this.path);
    if (fault) {
      // As after a failed fsync of a real file: what was written is of unknown durability, and this handle is done.
      this.failed = fault;
      throw fault;
    }
    this.inode.durableSize = this.inode.size;
  }

  async close(): Promise<void> {
    this.files.assertAlive(this.generation);
    this.closed = true;
  }

  async abort(): Promise<void> {
    this.closed = true;
  }
}
