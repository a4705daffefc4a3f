#!/usr/bin/env node
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import * as readline from "node:readline";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { KvClient } from "../client/client.js";
import { parseBytes, showBytes, showPeer, showRange, splitWords, table } from "../client/display.js";
import { StoreState } from "../proto/metapb.js";
import { physicalTime } from "../txn/codec.js";
import type { Logger } from "../util/logger.js";
import { errorMessage } from "../util/retry.js";
import { fatal, quietGrpcUnlessDebug } from "./common.js";
import { storeMetricsLines } from "./ctl-metrics.js";
import { formatOperators, STORE_STATES, StatusApi, type StoreStateName } from "./ctl-status-api.js";

const BIN = "tinykv-ctl";

const COMMANDS = `Commands:
  get <key> [--cf CF]                  read one key (raw API)
  put <key> <value> [--cf CF]          write one key (raw API)
  delete <key> [--cf CF]               delete one key (raw API)
  scan <start> [end] [--limit N] [--cf CF]
                                       raw keys in [start, end) across regions (default limit 100)
  scan <start> [end] [--limit N] --txn
                                       committed transactional keys in [start, end), read at a
                                       fresh timestamp
  txn <op>...                          one transaction; ops: get <k> | put <k> <v> | delete <k>
                                       e.g. txn put a 1 put b 2 delete c
  stores                               stores with their state, region and leader counts
  store <id> up|offline|tombstone      change a store's state: offline drains it, tombstone removes
                                       a drained one (only Offline stores that hold no region)
  operators                            running and recent scheduler operators, with why each was made
  metrics <store-id|host:port>         a store's /metrics in short: requests by method and outcome,
                                       p99 latency, regions, leaders (host:port: its status address)
  regions                              regions: range, epoch, peers, leader
  status                               cluster id, stores, regions, a fresh timestamp
  help                                 this list
  exit                                 leave the shell

Keys and values are text; write 0x<hex> for bytes. Output shows printable keys as text, others as 0x<hex>.
`;

const USAGE = `Usage: tinykv-ctl [flags] [command [args...]]

A person's tool for a tinykv-ts cluster. With no command it opens an interactive shell.

Flags:
  --scheduler <addrs>   scheduler address(es), comma-separated (default 127.0.0.1:2379)
  --status <addr>       the scheduler's status API, for operators and store (default 127.0.0.1:2381)
  --timeout <ms>        give up on an operation after this long (default 10000)
  --log-level <level>   client log level on stderr: error, warn, info, debug (default warn)
  -h, --help            show this help

${COMMANDS}
Exit codes: 0 ok, 1 the operation failed, 2 bad usage.
`;

class UsageError extends Error {
  override name = "UsageError";
}

const CMD_OPTIONS = {
  cf: { type: "string" },
  limit: { type: "string" },
  txn: { type: "boolean" },
} as const;

interface CmdFlags {
  cf?: string;
  limit?: string;
  txn?: boolean;
}

/** Lazily connects on the first command that needs the cluster. */
class Session {
  private client: KvClient | undefined;
  private connecting: Promise<KvClient> | undefined;

  constructor(
    readonly scheduler: string,
    readonly status: StatusApi,
    readonly timeoutMs: number,
    private readonly log: Logger,
    readonly out: (s: string) => void,
  ) {}

  kv(): Promise<KvClient> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= KvClient.connect({
      scheduler: this.scheduler,
      timeoutMs: this.timeoutMs,
      connectTimeoutMs: Math.min(this.timeoutMs, 5000),
      log: this.log,
    }).then(
      (c) => (this.client = c),
      (err: unknown) => {
        this.connecting = undefined;
        throw new Error(`cannot reach the scheduler at ${this.scheduler}: ${errorMessage(err)}`);
      },
    );
    return this.connecting;
  }

  close(): void {
    this.client?.close();
  }
}

function arity(args: string[], min: number, max: number, usage: string): void {
  if (args.length < min || args.length > max) throw new UsageError(`usage: ${usage}`);
}

function parseLimit(s: string | undefined): number {
  if (s === undefined) return 100;
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--limit wants a positive integer, got ${JSON.stringify(s)}`);
  return n;
}

/** Runs one command (words after the flags); prints results with `s.out`. */
async function runCommand(s: Session, words: string[], flags: CmdFlags): Promise<void> {
  const [cmd, ...args] = words;
  const cf = flags.cf ?? "";
  switch (cmd) {
    case "get": {
      arity(args, 1, 1, "get <key> [--cf CF]");
      const v = await (await s.kv()).get(parseBytes(args[0]!), cf);
      s.out(v === undefined ? "(not found)" : showBytes(v));
      return;
    }
    case "put":
      arity(args, 2, 2, "put <key> <value> [--cf CF]");
      await (await s.kv()).put(parseBytes(args[0]!), parseBytes(args[1]!), cf);
      s.out("OK");
      return;
    case "delete":
    case "del":
      arity(args, 1, 1, "delete <key> [--cf CF]");
      await (await s.kv()).delete(parseBytes(args[0]!), cf);
      s.out("OK");
      return;
    case "scan": {
      arity(args, 1, 2, "scan <start> [end] [--limit N] [--cf CF | --txn]");
      if (flags.txn && flags.cf !== undefined) throw new UsageError("scan: --txn reads transactional data, which has no --cf");
      const limit = parseLimit(flags.limit);
      const [start, end] = [parseBytes(args[0]!), parseBytes(args[1] ?? "")];
      const kvs = flags.txn ? await txnScan(s, start, end, limit) : await (await s.kv()).scan(start, end, limit, cf);
      for (const p of kvs) s.out(`${showBytes(p.key)} => ${showBytes(p.value)}`);
      s.out(`(${kvs.length} pair${kvs.length === 1 ? "" : "s"})`);
      return;
    }
    case "txn":
      return runTxn(s, args);
    case "stores":
      arity(args, 0, 0, "stores");
      return showStores(s);
    case "store":
      arity(args, 2, 2, "store <id> up|offline|tombstone");
      return setStoreState(s, args[0]!, args[1]!);
    case "operators":
      arity(args, 0, 0, "operators");
      for (const line of formatOperators(await s.status.operators())) s.out(line);
      return;
    case "metrics":
      arity(args, 1, 1, "metrics <store-id|host:port>");
      for (const line of await storeMetricsLines(args[0]!, { stores: async () => (await s.kv()).getAllStores(), timeoutMs: s.timeoutMs })) s.out(line);
      return;
    case "regions":
      arity(args, 0, 0, "regions");
      return showRegions(s);
    case "status":
      arity(args, 0, 0, "status");
      return showStatus(s);
    case "help":
      s.out(COMMANDS.trimEnd());
      return;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(cmd)} (try help)`);
  }
}

/** A read-only transaction: its start_ts is a fresh timestamp, so it sees every commit before it. */
async function txnScan(s: Session, start: Buffer, end: Buffer, limit: number) {
  const txn = await (await s.kv()).begin();
  try {
    return await txn.scan(start, end, limit);
  } finally {
    await txn.rollback();
  }
}

type TxnOp = { op: "get" | "delete"; key: Buffer } | { op: "put"; key: Buffer; value: Buffer };

async function runTxn(s: Session, args: string[]): Promise<void> {
  const ops: TxnOp[] = [];
  for (let i = 0; i < args.length; ) {
    const op = args[i];
    if ((op === "get" || op === "delete" || op === "del") && i + 1 < args.length) {
      ops.push({ op: op === "get" ? "get" : "delete", key: parseBytes(args[i + 1]!) });
      i += 2;
    } else if (op === "put" && i + 2 < args.length) {
      ops.push({ op: "put", key: parseBytes(args[i + 1]!), value: parseBytes(args[i + 2]!) });
      i += 3;
    } else throw new UsageError(`txn: bad op at ${JSON.stringify(args.slice(i).join(" "))}; ops are get <k> | put <k> <v> | delete <k>`);
  }
  if (ops.length === 0) throw new UsageError("usage: txn <op>...  (ops: get <k> | put <k> <v> | delete <k>)");
  const txn = await (await s.kv()).begin();
  let writes = 0;
  for (const o of ops) {
    if (o.op === "get") {
      const v = await txn.get(o.key);
      s.out(`${showBytes(o.key)} => ${v === undefined ? "(not found)" : showBytes(v)}`);
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
  s.out(`committed ${writes} write${writes === 1 ? "" : "s"} (start_ts ${txn.startTs}, commit_ts ${txn.commitTs})`);
}

async function showStores(s: Session): Promise<void> {
  const kv = await s.kv();
  const [stores, regions] = await Promise.all([kv.getAllStores(), kv.getAllRegions()]);
  const rows = stores
    .sort((a, b) => (a.id < b.id ? -1 : 1))
    .map((st) => {
      const peers = regions.filter((r) => r.region.peers.some((p) => p.storeId === st.id)).length;
      const leaders = regions.filter((r) => r.leader?.storeId === st.id).length;
      return [st.id.toString(), st.address, StoreState[st.state] ?? String(st.state), String(peers), String(leaders)];
    });
  s.out(table(["ID", "ADDRESS", "STATE", "REGIONS", "LEADERS"], rows).trimEnd());
  for (const st of stores) {
    if (st.state !== StoreState.Offline) continue;
    const left = regions.filter((r) => r.region.peers.some((p) => p.storeId === st.id)).length;
    s.out(
      left > 0
        ? `store ${st.id} is Offline: draining, ${left} region${left === 1 ? "" : "s"} left to move away`
        : `store ${st.id} is Offline and empty: \`store ${st.id} tombstone\` removes it`,
    );
  }
}

async function setStoreState(s: Session, id: string, state: string): Promise<void> {
  if (!/^[1-9]\d{0,19}$/.test(id)) throw new UsageError(`store: the id wants a positive integer, got ${JSON.stringify(id)}`);
  const wanted = state.toLowerCase();
  if (!(STORE_STATES as readonly string[]).includes(wanted)) throw new UsageError(`store: the state is one of ${STORE_STATES.join(", ")}, got ${JSON.stringify(state)}`);
  await s.status.setStoreState(BigInt(id), wanted as StoreStateName);
  s.out(`store ${id} is now ${wanted[0]!.toUpperCase()}${wanted.slice(1)}`);
}

async function showRegions(s: Session): Promise<void> {
  const regions = await (await s.kv()).getAllRegions();
  const rows = regions.map(({ region: r, leader }) => [
    r.id.toString(),
    showRange(r),
    `ver ${r.regionEpoch?.version ?? 0n} conf ${r.regionEpoch?.confVer ?? 0n}`,
    r.peers.map((p) => showPeer(p)).join(" "),
    leader ? showPeer(leader) : "-",
  ]);
  s.out(table(["ID", "RANGE", "EPOCH", "PEERS (peer@store)", "LEADER"], rows).trimEnd());
  s.out(`(${regions.length} region${regions.length === 1 ? "" : "s"})`);
}

async function showStatus(s: Session): Promise<void> {
  const kv = await s.kv();
  const [stores, regions, ts] = await Promise.all([kv.getAllStores(true), kv.getAllRegions(), kv.tso()]);
  const up = stores.filter((st) => st.state === StoreState.Up).length;
  const physical = new Date(Number(physicalTime(ts))).toISOString();
  s.out(`cluster id:  ${kv.clusterId}`);
  s.out(`scheduler:   ${kv.scheduler.leaderAddr}`);
  s.out(`stores:      ${stores.length} (${up} up)`);
  s.out(`regions:     ${regions.length}`);
  s.out(`tso:         ${ts} (${physical}, logical ${ts & 0x3ffffn})`);
}

/** Parses a shell line's flags and words, then runs it. */
async function runLine(s: Session, line: string): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args: splitWords(line), options: CMD_OPTIONS, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
  await runCommand(s, parsed.positionals, parsed.values);
}

const HISTORY_FILE = process.env.TINYKV_CTL_HISTORY ?? join(homedir(), ".tinykv_ctl_history");
const HISTORY_SIZE = 1000;

function loadHistory(): string[] {
  try {
    return existsSync(HISTORY_FILE) ? readFileSync(HISTORY_FILE, "utf8").split("\n").filter(Boolean).slice(0, HISTORY_SIZE) : [];
  } catch (err) {
    process.stderr.write(`${BIN}: warning: cannot read history ${HISTORY_FILE}: ${errorMessage(err)}\n`);
    return [];
  }
}

/** The interactive shell; returns the number of failed commands. */
async function shell(s: Session): Promise<number> {
  const tty = Boolean(process.stdin.isTTY);
  const history = tty ? loadHistory() : [];
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, prompt: "tinykv> ", terminal: tty, history: [...history], historySize: HISTORY_SIZE });
  if (tty) s.out(`tinykv-ctl: scheduler ${s.scheduler}; type help for commands, exit to leave`);
  let failures = 0;
  if (tty) rl.prompt();
  for await (const raw of rl) {
    const line = raw.trim();
    if (line && !line.startsWith("#")) {
      if (tty && history[0] !== line) history.unshift(line);
      if (line === "exit" || line === "quit") break;
      try {
        await runLine(s, line);
      } catch (err) {
        failures++;
        process.stderr.write(`error: ${oneLine(err)}\n`);
      }
    }
    if (tty) rl.prompt();
  }
  rl.close();
  if (tty) {
    try {
      writeFileSync(HISTORY_FILE, history.slice(0, HISTORY_SIZE).join("\n") + "\n");
    } catch (err) {
      process.stderr.write(`${BIN}: warning: cannot save history ${HISTORY_FILE}: ${errorMessage(err)}\n`);
    }
  }
  return failures;
}

function oneLine(err: unknown): string {
  return errorMessage(err).replace(/\s*\n\s*/g, " ");
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        ...CMD_OPTIONS,
        scheduler: { type: "string", default: "127.0.0.1:2379" },
        status: { type: "string", default: "127.0.0.1:2381" },
        timeout: { type: "string", default: "10000" },
        "log-level": { type: "string", default: "warn" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    fatal(BIN, `${errorMessage(err)} (see --help)`, 2);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const timeoutMs = Number(v.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) fatal(BIN, `--timeout wants a positive number of ms, got ${JSON.stringify(v.timeout)}`, 2);
  const level = v["log-level"]!;
  quietGrpcUnlessDebug(level);
  const log = pino({ level, name: BIN, base: undefined }, pino.destination(2));
  const session = new Session(v.scheduler!, new StatusApi(v.status!, timeoutMs), timeoutMs, log, (line) => process.stdout.write(line + "\n"));
  try {
    if (parsed.positionals.length === 0) {
      if (v.cf !== undefined || v.limit !== undefined || v.txn !== undefined) fatal(BIN, "--cf, --limit and --txn go with a command (see --help)", 2);
      return (await shell(session)) > 0 && !process.stdin.isTTY ? 1 : 0;
    }
    await runCommand(session, parsed.positionals, { cf: v.cf, limit: v.limit, txn: v.txn });
    return 0;
  } catch (err) {
    fatal(BIN, oneLine(err), err instanceof UsageError ? 2 : 1);
  } finally {
    session.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => fatal(BIN, oneLine(err)),
);
