// tinykv-ctl's data commands: raw get/put/delete/scan/delete-range (optionally in a column family)
// and one-line transactions.
import { parseBytes, showBytes } from "../../client/display.js";
import type { CtlCommand, CtlContext, CtlFlags } from "./command.js";
import { arity, helpEntry, plural, stringFlag, UsageError } from "./command.js";
import { parseTtlFlag } from "./cas-ttl-commands.js";

const CF_OPTION = { cf: { type: "string" } } as const;

export const getCommand: CtlCommand = {
  name: "get",
  help: [
    helpEntry("get <key> [--cf CF]", "read one key (raw API)"),
    helpEntry("get <key> --txn", "read one key's committed transactional value at a fresh ts"),
    helpEntry(
      "get <key> --replica",
      "... served by a follower (still linearizable: it asks the leader for a read index)",
    ),
    helpEntry(
      "get <key> --stale 5s",
      "transactional value as of 5s ago (ms, s, m), served by any replica that has caught up that far",
    ),
  ].join("\n"),
  options: { ...CF_OPTION, replica: { type: "boolean" }, txn: { type: "boolean" }, stale: { type: "string" } },
  async run(ctx, args, flags) {
    // The flags are in `help`; the one-line usage stays the raw form most people type.
    arity(args, 1, 1, "get <key> [--cf CF]");
    const key = parseBytes(args[0]!);
    const cf = stringFlag(flags, "cf");
    const stale = stringFlag(flags, "stale");
    const replicaRead = flags.replica === true;
    const txn = flags.txn === true || stale !== undefined;
    if (txn && cf !== undefined)
      throw new UsageError("get: --txn and --stale read transactional data, which has no --cf");
    if (stale !== undefined && replicaRead)
      throw new UsageError("get: --stale already lets any replica serve the read");
    const kv = await ctx.kv();
    const v =
      stale !== undefined
        ? await kv.txnGet(key, { staleRead: { maxStalenessMs: parseStaleness(stale) } })
        : txn
          ? await kv.txnGet(key, { replicaRead })
          : await kv.get(key, cf ?? "", { replicaRead });
    ctx.out(v === undefined ? "(not found)" : showBytes(v));
  },
};

/** "250ms", "5s", "2m" (a bare number is seconds) to milliseconds. */
export function parseStaleness(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new UsageError(`get --stale: ${JSON.stringify(text)} is not a duration (e.g. 500ms, 5s, 1m)`);
  const n = Number(m[1]);
  return Math.round(m[2] === "ms" ? n : m[2] === "m" ? n * 60_000 : n * 1000);
}

export const putCommand: CtlCommand = {
  name: "put",
  help: helpEntry("put <key> <value> [--cf CF] [--ttl 30s]", "write one key (raw API); --ttl: it expires"),
  options: { ...CF_OPTION, ttl: { type: "string" } },
  async run(ctx, args, flags) {
    arity(args, 2, 2, "put <key> <value> [--cf CF] [--ttl 30s]");
    await (await ctx.kv()).put(parseBytes(args[0]!), parseBytes(args[1]!), stringFlag(flags, "cf") ?? "", {
      ttlSeconds: parseTtlFlag(stringFlag(flags, "ttl")),
    });
    ctx.out("OK");
  },
};

export const deleteCommand: CtlCommand = {
  name: "delete",
  aliases: ["del"],
  help: helpEntry("delete <key> [--cf CF]", "delete one key (raw API)"),
  options: CF_OPTION,
  async run(ctx, args, flags) {
    arity(args, 1, 1, "delete <key> [--cf CF]");
    await (await ctx.kv()).delete(parseBytes(args[0]!), stringFlag(flags, "cf") ?? "");
    ctx.out("OK");
  },
};

export const scanCommand: CtlCommand = {
  name: "scan",
  help: [
    helpEntry(
      "scan <start> [end] [--limit N] [--cf CF]",
      "raw keys in [start, end) across regions (default limit 100)",
    ),
    helpEntry(
      "scan <start> [end] --reverse [--limit N] [--cf CF]",
      "raw keys in [end, start) from the largest down (TiKV's",
      'reverse scan: start is the upper bound; "" = no bound)',
    ),
    helpEntry(
      "scan <start> [end] [--limit N] --txn",
      "committed transactional keys in [start, end), read at a",
      "fresh timestamp",
    ),
  ].join("\n"),
  options: { ...CF_OPTION, limit: { type: "string" }, txn: { type: "boolean" }, reverse: { type: "boolean" } },
  async run(ctx, args, flags) {
    arity(args, 1, 2, "scan <start> [end] [--limit N] [--cf CF | --txn] [--reverse]");
    const cf = stringFlag(flags, "cf");
    const txn = flags.txn === true;
    const reverse = flags.reverse === true;
    if (txn && cf !== undefined) throw new UsageError("scan: --txn reads transactional data, which has no --cf");
    if (txn && reverse) throw new UsageError("scan: --reverse is for raw keys; a --txn scan goes forward only");
    const limit = parseLimit(stringFlag(flags, "limit"));
    const [start, end] = [parseBytes(args[0]!), parseBytes(args[1] ?? "")];
    const kvs = txn
      ? await txnScan(ctx, start, end, limit)
      : await (await ctx.kv()).scan(start, end, limit, cf ?? "", { reverse });
    for (const p of kvs) ctx.out(`${showBytes(p.key)} => ${showBytes(p.value)}`);
    ctx.out(`(${plural(kvs.length, "pair")})`);
  },
};

export const deleteRangeCommand: CtlCommand = {
  name: "delete-range",
  help: helpEntry(
    "delete-range <start> <end> [--cf CF]",
    "delete every raw key in [start, end) across regions; one",
    'raft command per region, not atomic across them; "" end = no end',
  ),
  options: CF_OPTION,
  async run(ctx, args, flags) {
    arity(args, 2, 2, "delete-range <start> <end> [--cf CF]");
    const [start, end] = [parseBytes(args[0]!), parseBytes(args[1]!)];
    if (end.length > 0 && Buffer.compare(start, end) >= 0)
      throw new UsageError("delete-range: the range is empty or inverted: start must sort before end");
    await (await ctx.kv()).deleteRange(start, end, stringFlag(flags, "cf") ?? "");
    ctx.out("OK");
  },
};

function parseLimit(s: string | undefined): number {
  if (s === undefined) return 100;
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0)
    throw new UsageError(`--limit wants a positive integer, got ${JSON.stringify(s)}`);
  return n;
}

/** A read-only transaction: its start_ts is a fresh timestamp, so it sees every commit before it. */
async function txnScan(ctx: CtlContext, start: Buffer, end: Buffer, limit: number) {
  const txn = await (await ctx.kv()).begin();
  try {
    return await txn.scan(start, end, limit);
  } finally {
    await txn.rollback();
  }
}

type TxnOp = { op: "get" | "delete"; key: Buffer } | { op: "put"; key: Buffer; value: Buffer };

function parseTxnOps(args: readonly string[]): TxnOp[] {
  const ops: TxnOp[] = [];
  for (let i = 0; i < args.length; ) {
    const op = args[i];
    if ((op === "get" || op === "delete" || op === "del") && i + 1 < args.length) {
      ops.push({ op: op === "get" ? "get" : "delete", key: parseBytes(args[i + 1]!) });
      i += 2;
    } else if (op === "put" && i + 2 < args.length) {
      ops.push({ op: "put", key: parseBytes(args[i + 1]!), value: parseBytes(args[i + 2]!) });
      i += 3;
    } else
      throw new UsageError(
        `txn: bad op at ${JSON.stringify(args.slice(i).join(" "))}; ops are get <k> | put <k> <v> | delete <k>`,
      );
  }
  if (ops.length === 0) throw new UsageError("usage: txn <op>...  (ops: get <k> | put <k> <v> | delete <k>)");
  return ops;
}

export const txnCommand: CtlCommand = {
  name: "txn",
  help: helpEntry(
    "txn <op>...",
    "one transaction; ops: get <k> | put <k> <v> | delete <k>",
    "e.g. txn put a 1 put b 2 delete c",
  ),
  async run(ctx, args: readonly string[], _flags: CtlFlags) {
    const ops = parseTxnOps(args);
    const txn = await (await ctx.kv()).begin();
    let writes = 0;
    for (const o of ops) {
      if (o.op === "get") {
        const v = await txn.get(o.key);
        ctx.out(`${showBytes(o.key)} => ${v === undefined ? "(not found)" : showBytes(v)}`);
      } else if (o.op === "put") {
        txn.put(o.key, o.value);
        writes++;
      } else {
        txn.delete(o.key);
        writes++;
      }
    }
    if (writes === 0) {
      await txn.rollback();
      return;
    }
    await txn.commit();
    ctx.out(`committed ${plural(writes, "write")} (start_ts ${txn.startTs}, commit_ts ${txn.commitTs})`);
  },
};
