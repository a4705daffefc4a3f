/**
 * The `unit` vitest project (vitest.config.ts UNIT_TESTS) is the fast set: its tests start no
 * cluster, spawn no process and open no socket. A file that needs one belongs in the `cluster`
 * project (the default for any file not listed). Test files are checked for all of FORBIDDEN; the
 * helpers they import only for the process and socket modules, since a helper file may also offer
 * a server to other tests (lab4's txn-server) without a unit test calling it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { UNIT_TESTS } from "../../vitest.config.js";

const ROOT = join(import.meta.dirname, "..", "..");

/** Imports and calls that mean a server, a process or a socket. */
const FORBIDDEN: [RegExp, string][] = [
  [/["']node:(child_process|net|http|https|dgram)["']/, "a process or socket module"],
  [/\bnew grpc\.Server\b|\bstartStandaloneServer\b|\bstartScheduler\b|\bstartTxnServer\b/, "a server"],
  [/\b(TestCluster|ProcessCluster|FakeCluster|KvClient|SchedulerRpcClient)\b/, "a cluster or a client of one"],
  [/harness\/(cluster|processes|grpc|ports|ctl)\.js/, "a cluster or process harness"],
];

function globRegex(glob: string): RegExp {
  const body = glob
    .split("**/")
    .map((part) => part.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*"))
    .join("(?:.*/)?");
  return new RegExp(`^${body}$`);
}

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return testFiles(path);
    return name.endsWith(".test.ts") ? [relative(ROOT, path)] : [];
  });
}

/** The file and the test helpers it imports (relative imports under test/), transitively. */
function withLocalImports(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const text = readFileSync(join(ROOT, file), "utf8");
  for (const m of text.matchAll(/from\s+["'](\.{1,2}\/[^"']+)\.js["']/g)) {
    const target = relative(ROOT, resolve(dirname(join(ROOT, file)), `${m[1]}.ts`));
    if (target.startsWith("test/") && existsSync(join(ROOT, target))) withLocalImports(target, seen);
  }
  return seen;
}

describe("the unit test project", () => {
  const patterns = UNIT_TESTS.map(globRegex);
  const unitFiles = testFiles(join(ROOT, "test")).filter((f) => patterns.some((p) => p.test(f)));
  const SELF = relative(ROOT, import.meta.filename);

  it("every pattern names at least one file", () => {
    for (const [i, glob] of UNIT_TESTS.entries())
      expect(
        unitFiles.some((f) => patterns[i]!.test(f)),
        glob,
      ).toBe(true);
  });

  it("starts no cluster, process or socket", () => {
    const offences: string[] = [];
    for (const file of unitFiles.filter((f) => f !== SELF)) {
      for (const used of withLocalImports(file)) {
        const text = readFileSync(join(ROOT, used), "utf8");
        const rules = used === file ? FORBIDDEN : FORBIDDEN.slice(0, 1);
        for (const [re, what] of rules)
          if (re.test(text))
            offences.push(`${file}${used === file ? "" : ` (via ${used})`}: ${what} (${re.exec(text)![0]})`);
      }
    }
    expect(offences, "move these to the cluster project (remove them from UNIT_TESTS)").toEqual([]);
  });
});
