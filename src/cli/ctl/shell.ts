// tinykv-ctl's interactive shell: one command per line, from a terminal (prompt, history) or a pipe.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import * as readline from "node:readline";
import type { Readable, Writable } from "node:stream";
import { errorMessage } from "../../util/retry.js";
import type { CtlContext } from "./command.js";
import type { CtlCommandSet } from "./commands.js";

const HISTORY_SIZE = 1000;

export interface ShellOptions {
  input: Readable;
  /** Where the prompt goes (a terminal only). */
  output?: Writable;
  /** Where each failed command's error line goes. */
  errOut: (line: string) => void;
  /** A terminal: prompt, greeting and history. A pipe gets none of them. */
  tty: boolean;
  /** The history file, read and written on a terminal only. */
  historyFile?: string;
}

/** Runs lines until end of input or `exit`/`quit`; returns how many commands failed. */
export async function runShell(ctx: CtlContext, commands: CtlCommandSet, opts: ShellOptions): Promise<number> {
  const { tty } = opts;
  const history = tty && opts.historyFile ? loadHistory(opts.historyFile, opts.errOut) : [];
  const rl = readline.createInterface({
    input: opts.input,
    output: opts.output,
    prompt: "tinykv> ",
    terminal: tty,
    history: [...history],
    historySize: HISTORY_SIZE,
  });
  if (tty) ctx.out(`tinykv-ctl: scheduler ${ctx.scheduler}; type help for commands, exit to leave`);
  let failures = 0;
  if (tty) rl.prompt();
  for await (const raw of rl) {
    const line = raw.trim();
    if (line && !line.startsWith("#")) {
      if (tty && history[0] !== line) history.unshift(line);
      if (line === "exit" || line === "quit") break;
      try {
        await commands.runLine(ctx, line);
      } catch (err) {
        failures++;
        opts.errOut(`error: ${oneLine(err)}`);
      }
    }
    if (tty) rl.prompt();
  }
  rl.close();
  if (tty && opts.historyFile) saveHistory(opts.historyFile, history, opts.errOut);
  return failures;
}

/** An error as one line (gRPC errors carry newlines). */
export function oneLine(err: unknown): string {
  return errorMessage(err).replace(/\s*\n\s*/g, " ");
}

function loadHistory(file: string, warn: (line: string) => void): string[] {
  try {
    return existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean).slice(0, HISTORY_SIZE) : [];
  } catch (err) {
    warn(`tinykv-ctl: warning: cannot read history ${file}: ${errorMessage(err)}`);
    return [];
  }
}

function saveHistory(file: string, history: string[], warn: (line: string) => void): void {
  try {
    writeFileSync(file, history.slice(0, HISTORY_SIZE).join("\n") + "\n");
  } catch (err) {
    warn(`tinykv-ctl: warning: cannot save history ${file}: ${errorMessage(err)}`);
  }
}
