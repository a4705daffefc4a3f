import type { ParseArgsConfig } from "node:util";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";

/** grpc-js prints its own multi-line errors to stderr; our binaries report failures themselves. */
export function quietGrpcUnlessDebug(logLevel: string): void {
  if (logLevel !== "debug" && logLevel !== "trace") grpc.setLogVerbosity(grpc.logVerbosity.NONE);
}

/** Prints one clear line to stderr and exits non-zero: how every binary reports a fatal problem. */
export function fatal(binary: string, message: string, exitCode = 1): never {
  process.stderr.write(`${binary}: error: ${message}\n`);
  process.exit(exitCode);
}

/** Parses flags strictly (unknown flags and stray positionals are errors), printing usage on --help. */
export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(
  binary: string,
  usage: string,
  options: T,
  allowPositionals = false,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      options: { ...options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals,
    });
    if ((values as Record<string, unknown>).help) {
      process.stdout.write(usage);
      process.exit(0);
    }
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (err) {
    fatal(binary, `${err instanceof Error ? err.message : String(err)} (see --help)`, 2);
  }
}

/** Runs `stop` once on SIGINT/SIGTERM, then exits; a second signal exits at once. */
export function onShutdownSignal(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(
          `error during shutdown after ${signal}: ${err instanceof Error ? err.message : String(err)}\n`,
        );
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}
