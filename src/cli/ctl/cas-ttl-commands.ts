// tinykv-ctl's raw compare-and-swap and TTL commands (issue 18): cas, ttl, and put's --ttl.
import { parseBytes, showBytes } from "../../client/display.js";
import type { CtlCommand } from "./command.js";
import { arity, helpEntry, stringFlag, UsageError } from "./command.js";

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** A ttl flag: whole seconds, optionally with a unit (30, 30s, 5m, 2h, 1d). */
export function parseTtlFlag(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const m = /^(\d+)([smhd]?)$/.exec(s.trim());
  const seconds = m ? Number(m[1]) * UNIT_SECONDS[m[2] || "s"]! : Number.NaN;
  if (!Number.isSafeInteger(seconds) || seconds <= 0)
    throw new UsageError(`--ttl wants a positive duration such as 30s, 5m, 2h or 1d, got ${JSON.stringify(s)}`);
  return seconds;
}

const CAS_USAGE = "cas <key> <new> [--expect OLD | --not-exist] [--ttl 30s] [--cf CF]";

export const casCommand: CtlCommand = {
  name: "cas",
  help: helpEntry(
    CAS_USAGE,
    "write <new> only if the key holds OLD (or nothing, with",
    "--not-exist); prints what it held. Fails if it did not swap",
  ),
  options: {
    expect: { type: "string" },
    "not-exist": { type: "boolean" },
    ttl: { type: "string" },
    cf: { type: "string" },
  },
  async run(ctx, args, flags) {
    arity(args, 2, 2, CAS_USAGE);
    const expect = stringFlag(flags, "expect");
    const notExist = flags["not-exist"] === true;
    if ((expect === undefined) === !notExist)
      throw new UsageError(`cas: give exactly one of --expect OLD or --not-exist`);
    const result = await (await ctx.kv()).compareAndSwap(
      parseBytes(args[0]!),
      parseBytes(args[1]!),
      notExist ? { notExist: true } : { value: parseBytes(expect!) },
      { cf: stringFlag(flags, "cf") ?? "", ttlSeconds: parseTtlFlag(stringFlag(flags, "ttl")) },
    );
    const held = result.previous === undefined ? "(not found)" : showBytes(result.previous);
    if (!result.succeed) throw new Error(`not swapped: the key holds ${held}`);
    ctx.out(`swapped (it held ${held})`);
  },
};

export const ttlCommand: CtlCommand = {
  name: "ttl",
  help: helpEntry("ttl <key> [--cf CF]", "seconds the raw key has left before it expires"),
  options: { cf: { type: "string" } },
  async run(ctx, args, flags) {
    arity(args, 1, 1, "ttl <key> [--cf CF]");
    const left = await (await ctx.kv()).keyTtl(parseBytes(args[0]!), stringFlag(flags, "cf") ?? "");
    ctx.out(left === undefined ? "(not found)" : left === 0 ? "no ttl (never expires)" : `${left}s left`);
  },
};
