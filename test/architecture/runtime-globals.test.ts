/**
 * Time, timers, deferral and randomness come from the injected Runtime (src/util/runtime.ts), so
 * a deterministic simulation can run the real code: no file under src/ calls the globals
 * directly, except the runtime itself, the CLI wiring, and any file listed as pending below
 * (each with what holds it back). The list may only shrink.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
const SRC = join(ROOT, "src");
const GLOBALS =
  /(?<![\w.])(setTimeout|setInterval|setImmediate|clearTimeout|clearInterval|clearImmediate)\s*\(|\bDate\.now\s*\(|\bMath\.random\s*\(|\bperformance\.now\s*\(|new Date\(\s*\)/;

const ALLOWED: Record<string, string> = {
  "src/util/runtime.ts": "the real runtime itself",
  "src/util/hop-trace.ts":
    "a diagnostic trace, off unless TINYKV_HOP_TRACE is set, that only records: its stamps must be the one real clock every process shares, so a write's hops line up across processes",
};
/** Files not yet migrated (each with what holds it back): none left, and the list may only shrink. */
const PENDING: Record<string, string> = {};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === "proto" || name === "cli" ? [] : sourceFiles(path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

/** The code of a file without its comments (a comment may name the globals). */
function code(path: string): string {
  return readFileSync(path, "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

describe("the injected runtime", () => {
  const offenders = sourceFiles(SRC)
    .map((path) => relative(ROOT, path))
    .filter((rel) => GLOBALS.test(code(join(ROOT, rel))));

  it("no file under src/ outside the runtime, the CLI and the pending list calls time, timer or random globals", () => {
    const unexpected = offenders.filter((f) => !(f in ALLOWED) && !(f in PENDING));
    expect(unexpected, `use the injected Runtime (src/util/runtime.ts) in: ${unexpected.join(", ")}`).toEqual([]);
  });

  it("the pending list only names files that still need it", () => {
    const done = Object.keys(PENDING).filter((f) => !offenders.includes(f));
    expect(done, `remove from PENDING (they no longer call the globals): ${done.join(", ")}`).toEqual([]);
  });
});
