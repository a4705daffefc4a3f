// Scripts of commands and their expected output, after CockroachDB's datadriven format:
//
//   # a comment (kept when the file is rewritten)
//   command arg key=value key=(1,2,3)
//   ----
//   expected output, up to the next blank line
//
// The runner executes each command, compares what it printed with the expected text and, with
// UPDATE=1, writes the file back with the actual output instead.
import { readFileSync, writeFileSync } from "node:fs";

export interface CmdArg {
  key: string;
  /** A bare word has no values; key=v has one; key=(a,b) has several. */
  vals: string[];
}

export interface TestCase {
  /** 1-based line of the command, for failure messages. */
  line: number;
  /** Comment and blank lines before the command, reproduced verbatim on rewrite. */
  preamble: string[];
  cmd: string;
  args: CmdArg[];
  /** The command line as written. */
  input: string;
  expected: string;
}

export interface Script {
  cases: TestCase[];
  /** Comment lines after the last case. */
  trailer: string[];
}

export class ScriptSyntaxError extends Error {
  constructor(file: string, line: number, what: string) {
    super(`${file}:${line}: ${what}`);
    this.name = "ScriptSyntaxError";
  }
}

export function parseScript(file: string, text: string): Script {
  const lines = text.split("\n");
  const cases: TestCase[] = [];
  let preamble: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const raw = lines[i]!;
    if (raw.trim() === "" || raw.trimStart().startsWith("#")) {
      preamble.push(raw);
      i++;
      continue;
    }
    const line = i + 1;
    const input = raw.trim();
    i++;
    if (lines[i] !== "----") throw new ScriptSyntaxError(file, line, `expected "----" after "${input}"`);
    i++;
    const out: string[] = [];
    while (i < lines.length && lines[i] !== "") out.push(lines[i++]!);
    const [cmd, ...rest] = splitWords(input);
    cases.push({ line, preamble, cmd: cmd!, args: rest.map(parseArg), input, expected: out.join("\n") });
    preamble = [];
  }
  while (preamble.length > 0 && preamble[preamble.length - 1] === "") preamble.pop();
  return { cases, trailer: preamble };
}

/** Splits on spaces outside parentheses, so voters=(1, 2) stays one word. */
function splitWords(s: string): string[] {
  const words: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === " " && depth === 0) {
      if (cur !== "") words.push(cur);
      cur = "";
    } else {
      cur += ch;
    }
  }
  if (cur !== "") words.push(cur);
  return words;
}

function parseArg(word: string): CmdArg {
  const eq = word.indexOf("=");
  if (eq < 0) return { key: word, vals: [] };
  const key = word.slice(0, eq);
  const v = word.slice(eq + 1);
  if (v.startsWith("(") && v.endsWith(")")) {
    const inner = v.slice(1, -1).trim();
    return { key, vals: inner === "" ? [] : inner.split(/[ ,]+/) };
  }
  return { key, vals: [v] };
}

export function formatScript(script: Script, outputs: string[]): string {
  const parts: string[] = [];
  script.cases.forEach((c, i) => {
    parts.push(...c.preamble, c.input, "----", outputs[i]!, "");
  });
  // One blank line separates cases; the preamble's own blank lines would double it.
  const text = parts.join("\n").replace(/\n{3,}/g, "\n\n");
  const trailer = script.trailer.length > 0 ? script.trailer.join("\n") + "\n" : "";
  return text.replace(/\n+$/, "\n") + trailer;
}

export function readScript(path: string): Script {
  return parseScript(path, readFileSync(path, "utf8"));
}

export function writeScript(path: string, script: Script, outputs: string[]): void {
  writeFileSync(path, formatScript(script, outputs));
}
