#!/usr/bin/env node
// The tinykv-ctl binary: flags, then one command or the interactive shell. The commands themselves
// are functions in ./ctl (tests call them in-process); this file only maps their errors to exit codes.
import { realpathSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { errorMessage } from "../util/retry.js";
import type { TlsConfig } from "../util/tls.js";
import { TLS_FLAG_OPTIONS, TlsConfigError, tlsFlagsUsage, tlsFromFlags } from "../util/tls.js";
import { fatal, quietGrpcUnlessDebug } from "./common.js";
import type { CtlFlags } from "./ctl/command.js";
import { UsageError } from "./ctl/command.js";
import { ctlCommands } from "./ctl/commands.js";
import { CtlSession } from "./ctl/session.js";
import { oneLine, runShell } from "./ctl/shell.js";

const BIN = "tinykv-ctl";

const USAGE = `Usage: tinykv-ctl [flags] [command [args...]]

A person's tool for a tinykv-ts cluster. With no command it opens an interactive shell.

Flags:
  --scheduler <addrs>   scheduler address(es), comma-separated (default 127.0.0.1:2379)
  --status <addrs>      the scheduler's status API, for operators and store (default 127.0.0.1:2381);
                        comma-separated for a replicated scheduler (the leader's serves)
  --timeout <ms>        give up on an operation after this long (default 10000)
  --log-level <level>   client log level on stderr: error, warn, info, debug (default warn)
${tlsFlagsUsage(24)}                        with them the scheduler, stores and status APIs are reached over mutual
                        TLS (HTTPS for --status and metrics)
  -h, --help            show this help

${ctlCommands.helpText}
Exit codes: 0 ok, 1 the operation failed, 2 bad usage.
`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        ...ctlCommands.options,
        scheduler: { type: "string", default: "127.0.0.1:2379" },
        status: { type: "string", default: "127.0.0.1:2381" },
        timeout: { type: "string", default: "10000" },
        "log-level": { type: "string", default: "warn" },
        ...TLS_FLAG_OPTIONS,
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    fatal(BIN, `${errorMessage(err)} (see --help)`, 2);
  }
  const { scheduler, status, timeout, "log-level": level, help, cacert, cert, key, ...rest } = parsed.values;
  const commandFlags: CtlFlags = rest;
  if (help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const timeoutMs = Number(timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
    fatal(BIN, `--timeout wants a positive number of ms, got ${JSON.stringify(timeout)}`, 2);
  let tls: TlsConfig | undefined;
  try {
    tls = tlsFromFlags({ cacert, cert, key });
  } catch (err) {
    if (err instanceof TlsConfigError) fatal(BIN, err.message, 2);
    throw err;
  }
  quietGrpcUnlessDebug(level as string);
  const log = pino({ level: level as string, name: BIN, base: undefined }, pino.destination(2));
  const out = (line: string) => process.stdout.write(line + "\n");
  const session = new CtlSession({
    scheduler: scheduler as string,
    statusAddr: status as string,
    timeoutMs,
    log,
    out,
    tls,
  });
  try {
    if (parsed.positionals.length === 0) {
      if (Object.values(commandFlags).some((v) => v !== undefined))
        fatal(BIN, `${listFlags(Object.keys(ctlCommands.options))} go with a command (see --help)`, 2);
      const tty = Boolean(process.stdin.isTTY);
      const failures = await runShell(session, ctlCommands, {
        input: process.stdin,
        output: process.stdout,
        errOut: (line) => process.stderr.write(line + "\n"),
        tty,
        historyFile: process.env.TINYKV_CTL_HISTORY ?? join(homedir(), ".tinykv_ctl_history"),
      });
      return failures > 0 && !tty ? 1 : 0;
    }
    await ctlCommands.run(session, parsed.positionals, commandFlags);
    return 0;
  } catch (err) {
    fatal(BIN, oneLine(err), err instanceof UsageError ? 2 : 1);
  } finally {
    session.close();
  }
}

/** "--a, --b and --c" */
function listFlags(names: string[]): string {
  const flags = names.map((n) => `--${n}`);
  return flags.length <= 1 ? flags.join("") : `${flags.slice(0, -1).join(", ")} and ${flags.at(-1)}`;
}

/** True when this file is the program node runs (directly, through the npm bin link, or via tsx), not an import. */
function isMainModule(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    // argv[1] names no file (e.g. `node -e`): then this module was imported, not run.
    return false;
  }
}

if (isMainModule()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => fatal(BIN, oneLine(err)),
  );
}
