// Raft scenarios as data: each testdata/*.txt script drives a few nodes by hand and lists every
// Ready, message and trace line it expects. UPDATE=1 rewrites the scripts with what happened.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readScript, writeScript } from "./interaction/datadriven.js";
import { InteractionEnv } from "./interaction/env.js";

const dir = join(import.meta.dirname, "testdata");
const update = process.env.UPDATE === "1";

describe("raft interactions", () => {
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".txt"))
    .sort()) {
    it(file, () => {
      const path = join(dir, file);
      const script = readScript(path);
      const env = new InteractionEnv();
      const outputs: string[] = [];
      for (const c of script.cases) {
        const actual = env.handle(c);
        outputs.push(actual);
        if (!update) expect(actual, `${file}:${c.line}: ${c.input}`).toBe(c.expected);
      }
      if (update) writeScript(path, script, outputs);
    });
  }
});
