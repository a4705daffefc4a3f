/**
 * Limits on snapshot streams a store receives. Any network client can open the `Snapshot` rpc,
 * so how many run at once, how many bytes one may declare and how long one may sit silent are
 * bounded; a refused or aborted receive leaves no file behind (SnapManager.receive deletes it).
 */
import { TinyKvError } from "../../util/errors.js";
import type { Runtime } from "../../util/runtime.js";

/** A snapshot stream refused for a limit of this store: answered RESOURCE_EXHAUSTED, the sender retries later. */
export class SnapshotLimitError extends TinyKvError {
  constructor(
    readonly limit: "concurrentRecvSnapLimit" | "snapRecvMaxBytes",
    readonly value: number,
    readonly max: number,
    what: string,
  ) {
    super(`snapshot refused: ${what} ${value}, over this store's ${limit} of ${max}`, { answer: true });
  }
}

/** A snapshot stream that sent nothing for too long: aborted, its partial file deleted. */
export class SnapshotIdleError extends TinyKvError {
  constructor(readonly idleMs: number) {
    super(`snapshot stream aborted: no chunk for ${idleMs} ms`);
  }
}

/**
 * `chunks`, failing with SnapshotIdleError when the sender takes longer than `idleMs` for the
 * next one. The clock runs only while waiting for the sender, not while the receiver writes.
 */
export async function* withIdleTimeout<T>(
  chunks: AsyncIterable<T>,
  runtime: Runtime,
  idleMs: number,
): AsyncGenerator<T> {
  const it = chunks[Symbol.asyncIterator]();
  let ended = false;
  try {
    for (;;) {
      const next = it.next();
      let timer: ReturnType<Runtime["setTimeout"]> | undefined;
      const idle = new Promise<never>((_, reject) => {
        timer = runtime.setTimeout(() => reject(new SnapshotIdleError(idleMs)), idleMs);
      });
      let r: IteratorResult<T>;
      try {
        r = await Promise.race([next, idle]);
      } catch (err) {
        // Left waiting when idle: it settles once the rpc ends (the refusal closes it), unawaited.
        next.catch(() => undefined);
        throw err;
      } finally {
        runtime.clearTimeout(timer);
      }
      if (r.done) {
        ended = true;
        return;
      }
      yield r.value;
    }
  } finally {
    // Stopped early (refused, idle, the reader failed): let the source release what it holds.
    if (!ended) void Promise.resolve(it.return?.()).catch(() => undefined);
  }
}
