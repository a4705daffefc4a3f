// tinykv-ctl watch: the committed transactional changes under a prefix, one line each, as they
// commit (until interrupted, or --count changes); with --raw, the raw keys' changes, each with
// its region and raft index.
import { parseBytes, showBytes } from "../../client/display.js";
import type { CtlCommand, CtlContext } from "./command.js";
import { arity, helpEntry, stringFlag, UsageError } from "./command.js";

const USAGE = "watch <prefix> [--from-ts TS] [--count N] [--resolved] | watch --raw <prefix> [--count N]";

function parseCount(flag: string | undefined): number | undefined {
  if (flag === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(flag))
    throw new UsageError(`--count must be a positive integer, got ${JSON.stringify(flag)}`);
  return Number(flag);
}

function parseTs(flag: string | undefined): bigint | undefined {
  if (flag === undefined) return undefined;
  if (!/^[0-9]+$/.test(flag))
    throw new UsageError(`--from-ts must be a timestamp (an integer), got ${JSON.stringify(flag)}`);
  return BigInt(flag);
}

export const watchCommand: CtlCommand = {
  name: "watch",
  help: helpEntry(
    USAGE,
    "print the committed transactional changes of the keys under",
    "prefix in commit order, from now (or after --from-ts), until",
    "interrupted or N changes; --resolved prints the checkpoints;",
    "--raw: the raw keys' changes from now, each as REGION:INDEX",
  ),
  options: {
    "from-ts": { type: "string" },
    count: { type: "string" },
    resolved: { type: "boolean" },
    raw: { type: "boolean" },
  },
  async run(ctx, args, flags) {
    arity(args, 1, 1, USAGE);
    const count = parseCount(stringFlag(flags, "count"));
    if (flags.raw === true) {
      if (flags["from-ts"] !== undefined || flags.resolved !== undefined)
        throw new UsageError(
          "--raw positions are raft indexes: --from-ts and --resolved are for the transactional watch",
        );
      return watchRaw(ctx, parseBytes(args[0]!), count);
    }
    const fromTs = parseTs(stringFlag(flags, "from-ts"));
    const watch = (await ctx.kv()).watch(parseBytes(args[0]!), { fromTs });
    let seen = 0;
    try {
      for await (const ev of watch) {
        if (ev.type === "resolved") {
          if (flags.resolved === true) ctx.out(`${ev.ts} resolved`);
          continue;
        }
        const value = ev.type === "put" ? ` ${showBytes(ev.value)}` : "";
        ctx.out(`${ev.commitTs} ${ev.type} ${showBytes(ev.key)}${value}`);
        if (count !== undefined && ++seen >= count) break;
      }
    } finally {
      watch.stop();
    }
  },
};

async function watchRaw(ctx: CtlContext, prefix: Buffer, count: number | undefined): Promise<void> {
  const watch = (await ctx.kv()).watchRaw(prefix);
  let seen = 0;
  try {
    for await (const ev of watch) {
      if (ev.type === "initialized" || ev.type === "reset") continue; // no reset: resetOnCompacted is off
      const at = `${ev.regionId}:${ev.index}`;
      if (ev.type === "put") {
        const expiry = ev.expiresAtMs === undefined ? "" : ` expires ${new Date(ev.expiresAtMs).toISOString()}`;
        ctx.out(`${at} put ${showBytes(ev.key)} ${showBytes(ev.value)}${expiry}`);
      } else ctx.out(`${at} delete ${showBytes(ev.key)}`);
      if (count !== undefined && ++seen >= count) break;
    }
  } finally {
    watch.stop();
  }
}
