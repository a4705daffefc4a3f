/**
 * No two exported classes or interfaces under src/ share a name: a reader who meets
 * `StoreUnreachableError` should not have to check which of two it is. Generated protobuf codecs
 * are left out: they carry the wire's own names (metapb.Peer, errorpb.Error...), which may repeat
 * across protos and may match a hand-written class that plays the role (raftstore's Peer).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
const SRC = join(ROOT, "src");
const DECLARATION = /^export\s+(?:declare\s+)?(?:abstract\s+)?(?:class|interface)\s+([A-Za-z_$][\w$]*)/gm;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

const isGenerated = (text: string): boolean => text.startsWith("// Code generated");

/** Exported class and interface names of hand-written files, each with the files that declare it. */
function declarations(): Map<string, string[]> {
  const byName = new Map<string, string[]>();
  for (const path of sourceFiles(SRC)) {
    const text = readFileSync(path, "utf8");
    if (isGenerated(text)) continue;
    for (const m of text.matchAll(DECLARATION)) {
      const name = m[1]!;
      byName.set(name, [...(byName.get(name) ?? []), relative(ROOT, path)]);
    }
  }
  return byName;
}

describe("names under src/", () => {
  it("no two exported classes or interfaces of hand-written files share a name", () => {
    const names = declarations();
    expect(names.size, "the scan found no declarations: is the pattern still right?").toBeGreaterThan(100);
    const repeated = [...names]
      .filter(([, files]) => files.length > 1)
      .map(([name, files]) => `${name} (${files.join(", ")})`);
    expect(repeated, `rename one side to say what it is: ${repeated.join("; ")}`).toEqual([]);
  });
});
