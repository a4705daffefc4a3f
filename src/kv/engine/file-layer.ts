import { createReadStream, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { open } from "node:fs/promises";

/**
 * The few file operations snapshot files need, injected so the deterministic simulation can run
 * them on its simulated disk (SimFiles) instead of the real file system. Data moves
 * asynchronously (write, fsync, read); the directory operations are synchronous, as the
 * raftstore calls them between turns.
 *
 * Durability, as POSIX promises it: bytes written reach stable storage at `sync()`, a new,
 * renamed or removed name at `syncDir()` of its directory. Without them a power loss may lose or
 * truncate a file, or undo a rename.
 */
export interface FileLayer {
  /** Creates the directory and its parents if missing. */
  mkdir(dir: string): void;
  /** Creates `path` (truncating it if it exists) for writing. */
  create(path: string): Promise<FileWriter>;
  /** The file's bytes, in chunks of at most `chunkBytes`. Fails if the file does not exist. */
  read(path: string, chunkBytes: number): AsyncIterable<Buffer>;
  /** Moves `from` to `to`, replacing `to` if it exists. */
  rename(from: string, to: string): void;
  /** The size of a regular file, undefined when there is none at `path`. */
  stat(path: string): { size: number } | undefined;
  /** Names of the entries of a directory. */
  list(dir: string): string[];
  /** Removes a file; nothing happens if it does not exist. */
  remove(path: string): void;
  /** Makes the directory's entries (created, renamed, removed names) durable. */
  syncDir(dir: string): Promise<void>;
}

export interface FileWriter {
  /** Appends `chunk`; resolves once the file holds it (not yet durably). */
  write(chunk: Buffer): Promise<void>;
  /** fsync: what was written so far survives a power loss. */
  sync(): Promise<void>;
  close(): Promise<void>;
  /** Closes after a failure; the file stays where it is (the caller removes it). */
  abort(): Promise<void>;
}

class RealFileWriter implements FileWriter {
  private closed = false;

  constructor(private readonly handle: FileHandle) {}

  async write(chunk: Buffer): Promise<void> {
    // A regular file takes the whole buffer at once in practice; the loop is for the rare short write.
    let offset = 0;
    while (offset < chunk.length) {
      const { bytesWritten } = await this.handle.write(chunk, offset, chunk.length - offset);
      offset += bytesWritten;
    }
  }

  sync(): Promise<void> {
    return this.handle.sync();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }

  async abort(): Promise<void> {
    try {
      await this.close();
    } catch {
      // The write already failed and the caller deletes the file: a close error adds nothing.
    }
  }
}

/** The file layer of production: node:fs. */
export const realFileLayer: FileLayer = {
  mkdir: (dir) => void mkdirSync(dir, { recursive: true }),
  create: async (path) => new RealFileWriter(await open(path, "w")),
  read: (path, chunkBytes) => createReadStream(path, { highWaterMark: chunkBytes }),
  rename: (from, to) => renameSync(from, to),
  stat: (path) => {
    const st = statSync(path, { throwIfNoEntry: false });
    return st?.isFile() ? { size: st.size } : undefined;
  },
  list: (dir) => readdirSync(dir),
  remove: (path) => rmSync(path, { force: true }),
  syncDir: async (dir) => {
    const handle = await open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
};
