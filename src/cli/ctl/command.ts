// What a tinykv-ctl command is: a function of its words and flags that prints lines to a sink and
// talks to the cluster through a context. The binary, the interactive shell and tests all run the
// same functions; only the binary turns errors into exit codes.
import type { ParseArgsConfig } from "node:util";
import type { KvClient } from "../../client/client.js";
import type { TlsConfig } from "../../util/tls.js";
import type { StatusApi } from "../ctl-status-api.js";

/** A bad command line: the binary exits 2 with it, the shell prints it and goes on. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** The flag values of one command line, as node:util's parseArgs returns them. */
export type CtlFlags = Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;

export type CtlFlagOptions = NonNullable<ParseArgsConfig["options"]>;

/** What a command runs against. */
export interface CtlContext {
  /** The scheduler address(es) as given, for messages. */
  readonly scheduler: string;
  /** The cluster client, connected on first use (commands that need no cluster never connect). */
  kv(): Promise<KvClient>;
  /** How long one operation may take, ms (--timeout), for commands that make their own requests. */
  readonly timeoutMs: number;
  /** The scheduler's HTTP status API (operators, store states). */
  readonly status: StatusApi;
  /** Where the command's result goes, one line per call. */
  out(line: string): void;
  /** Mutual TLS for the requests a command makes itself (a store's /metrics); undefined: plaintext. */
  readonly tls?: TlsConfig;
}

export interface CtlCommand {
  readonly name: string;
  readonly aliases?: readonly string[];
  /** Its lines in `help`, made with helpEntry. */
  readonly help: string;
  /** The flags it reads; every command's flags are accepted on every line (as before the split). */
  readonly options?: CtlFlagOptions;
  /** Runs it with the words after its name; throws UsageError for a bad line, any other error for a failure. */
  run(ctx: CtlContext, args: readonly string[], flags: CtlFlags): Promise<void>;
}

const HELP_COLUMN = 37;

/** One entry of `help`: the usage, then what it does aligned in a column (on the next line when the usage is long). */
export function helpEntry(usage: string, ...does: string[]): string {
  const indent = " ".repeat(HELP_COLUMN + 2);
  const [first = "", ...rest] = does;
  const head =
    usage.length < HELP_COLUMN - 1 ? `  ${usage.padEnd(HELP_COLUMN)}${first}` : `  ${usage}\n${indent}${first}`;
  return [head, ...rest.map((line) => indent + line)].join("\n");
}

export function arity(args: readonly string[], min: number, max: number, usage: string): void {
  if (args.length < min || args.length > max) throw new UsageError(`usage: ${usage}`);
}

export function stringFlag(flags: CtlFlags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === "string" ? v : undefined;
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
