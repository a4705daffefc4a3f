/**
 * A per-hop trace of the write path, for benchmarks only: when TINYKV_HOP_TRACE names a
 * directory, each process (and worker thread) appends `time hop index commit` lines to its own
 * file there, and `bench/tools/hop-trace.ts` lines them up, write by write, across the client,
 * the leader and the followers. Off (the default), `hopTrace` is undefined and every call site
 * is one undefined check.
 *
 * Times are epoch milliseconds from the high-resolution clock (performance.timeOrigin + now()), so
 * lines from different processes on one machine compare to within microseconds.
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { threadId } from "node:worker_threads";

/** Records that a write reached `hop`: `index` is the raft log index it concerns, `commit` a commit index. */
export type HopTrace = (hop: string, index?: bigint | number, commit?: bigint | number) => void;

/** Lines kept in memory at most between two flushes (a trace far longer than a benchmark is cut). */
const MAX_BUFFERED_LINES = 200_000;
const FLUSH_EVERY_MS = 500;

function startTrace(dir: string): HopTrace {
  const file = join(dir, `${process.pid}-${threadId}.trace`);
  const origin = performance.timeOrigin;
  let lines: string[] = [`# ${process.argv.slice(1).join(" ")}`];
  const flush = () => {
    if (lines.length === 0) return;
    const text = `${lines.join("\n")}\n`;
    lines = [];
    appendFileSync(file, text);
  };
  setInterval(flush, FLUSH_EVERY_MS).unref();
  process.on("exit", flush);
  return (hop, index, commit) => {
    if (lines.length >= MAX_BUFFERED_LINES) return;
    lines.push(`${(origin + performance.now()).toFixed(3)} ${hop} ${index ?? "-"} ${commit ?? "-"}`);
  };
}

const dir = process.env.TINYKV_HOP_TRACE;
export const hopTrace: HopTrace | undefined = dir ? startTrace(dir) : undefined;
