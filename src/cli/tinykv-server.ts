#!/usr/bin/env node
import "./v8-tiering.js";
import { mkdirSync, accessSync, constants } from "node:fs";
import { EngineOpenError } from "../kv/engine/index.js";
import { PortInUseError } from "../kv/server/index.js";
import { createLogger } from "../util/logger.js";
import { fatal, onShutdownSignal, parseFlags, quietGrpcUnlessDebug } from "./common.js";
import type { RunningNode } from "./standalone-node.js";
import { startStandaloneServer } from "./standalone-node.js";
import { startRaftNode, ClusterMismatchError } from "./raft-node.js";
import { ConfigError, DEFAULT_RAFTSTORE_CONFIG, resolveConfig } from "../kv/raftstore/index.js";
import { DeadlineExceededError } from "../util/retry.js";
import { readFileSync } from "node:fs";
import { defaultStatusAddr } from "../kv/status/index.js";
import { StatusAddressInUseError } from "../util/http-status.js";
import { checkDisk, describeDiskCheck } from "./check-disk.js";
import { AdvertiseAddrError, resolveAdvertiseAddr } from "./advertise.js";
import type { TlsConfig } from "../util/tls.js";
import { TLS_FLAG_OPTIONS, TlsConfigError, tlsFlagsUsage, tlsFromFlags } from "../util/tls.js";

const BINARY = "tinykv-server";
const USAGE = `Usage: tinykv-server [flags]

  --path <dir>          data directory (default: data)
  --addr <host:port>    address to listen on (default: 127.0.0.1:20160; 0.0.0.0:20160 for every interface)
  --advertise-addr <host:port>  address the scheduler tells other stores and clients to dial
                        (default: --addr; must be routable, so not 0.0.0.0)
  --scheduler <addrs>   scheduler address(es), comma-separated (default: 127.0.0.1:2379)
  --standalone          serve from one local LevelDB without Raft or a scheduler (lab 1 mode)
  --status-addr <host:port>  Prometheus /metrics and JSON /status; "" disables it
                        (default: the --addr host with the gRPC port + 20, e.g. 127.0.0.1:20180)
  --advertise-status-addr <host:port>  status address this store reports in /status and its logs
                        (default: --status-addr)
  --slow-ms <ms>         a write slower than this logs one line with its stages (default 500; 0 never)
  --check-disk          measure synced-write latency of the data dir's disk, say whether it is fit, exit
  --lease-reads <bool>  true: a leader a quorum heard from recently serves linearizable reads without
                        a heartbeat round; false: every read takes a ReadIndex round (default: true,
                        or the --config file's "leaseReads")
  --resolved-ts-interval-ms <ms>  how often each region's leader publishes its resolved ts; a
                        replica serves stale reads up to it (default 1000, or the --config file's
                        "resolvedTsIntervalMs")
  --config <file>       JSON file with raftstore settings, e.g. {"raftBaseTickMs": 100} (see README)
  --log-level <level>   fatal, error, warn, info, debug (default: info, or $LOG_LEVEL)
${tlsFlagsUsage(24)}                        with them every connection is mutual TLS: clients, other stores, the
                        scheduler, and the status server (then HTTPS, wanting a client certificate)
  -h, --help            show this help
`;

async function main(): Promise<void> {
  const { values } = parseFlags(BINARY, USAGE, {
    path: { type: "string", default: "data" },
    addr: { type: "string", default: "127.0.0.1:20160" },
    scheduler: { type: "string", default: "127.0.0.1:2379" },
    standalone: { type: "boolean", default: false },
    config: { type: "string" },
    "lease-reads": { type: "string" },
    "resolved-ts-interval-ms": { type: "string" },
    "status-addr": { type: "string" },
    "advertise-addr": { type: "string" },
    "advertise-status-addr": { type: "string" },
    "check-disk": { type: "boolean", default: false },
    "slow-ms": { type: "string", default: "500" },
    "log-level": { type: "string", default: process.env.LOG_LEVEL ?? "info" },
    ...TLS_FLAG_OPTIONS,
  });
  const path = values.path as string;
  const addr = values.addr as string;
  const log = createLogger(values["log-level"] as string, BINARY);
  quietGrpcUnlessDebug(values["log-level"] as string);

  try {
    mkdirSync(path, { recursive: true });
    accessSync(path, constants.R_OK | constants.W_OK);
  } catch (err) {
    fatal(BINARY, `data dir ${path} is not usable: ${(err as Error).message}`);
  }
  if (values["check-disk"]) {
    const result = checkDisk(path);
    process.stdout.write(describeDiskCheck(result) + "\n");
    process.exit(result.verdict === "fit" ? 0 : 1);
  }
  const leaseReads = parseBoolFlag("--lease-reads", values["lease-reads"] as string | undefined);
  const resolvedTsText = values["resolved-ts-interval-ms"] as string | undefined;
  const resolvedTsIntervalMs = resolvedTsText === undefined ? undefined : Number(resolvedTsText);
  if (resolvedTsIntervalMs !== undefined && (!Number.isSafeInteger(resolvedTsIntervalMs) || resolvedTsIntervalMs <= 0))
    fatal(
      BINARY,
      `--resolved-ts-interval-ms must be a positive integer of ms, got ${JSON.stringify(resolvedTsText)}`,
      2,
    );
  const slowMs = Number(values["slow-ms"]);
  if (!Number.isSafeInteger(slowMs) || slowMs < 0)
    fatal(BINARY, `--slow-ms must be a non-negative integer of ms, got ${JSON.stringify(values["slow-ms"])}`, 2);
  let statusAddr: string | undefined;
  try {
    statusAddr =
      values["status-addr"] === undefined ? defaultStatusAddr(addr) : (values["status-addr"] as string) || undefined;
  } catch (err) {
    fatal(BINARY, (err as Error).message, 2);
  }

  let tls: TlsConfig | undefined;
  try {
    tls = tlsFromFlags(values);
  } catch (err) {
    if (err instanceof TlsConfigError) fatal(BINARY, err.message, 2);
    throw err;
  }

  // Checked before anything starts: a store must never register an address nobody can dial.
  const advertise = values.standalone ? { advertiseAddr: addr } : advertiseAddrs(values, addr, statusAddr);

  // Signals during start-up wait for it to finish, then stop cleanly (engines closed).
  let starting: Promise<RunningNode | undefined> = Promise.resolve(undefined);
  onShutdownSignal(async () => {
    log.info("shutting down");
    const node = await starting;
    await node?.stop();
  });
  starting = start().catch((err: unknown) => {
    if (
      err instanceof PortInUseError ||
      err instanceof StatusAddressInUseError ||
      err instanceof EngineOpenError ||
      err instanceof ClusterMismatchError
    )
      fatal(BINARY, err.message);
    if (err instanceof DeadlineExceededError)
      fatal(BINARY, `cannot reach the scheduler at ${values.scheduler as string}: ${err.message}`);
    throw err;
  });
  await starting;

  async function start(): Promise<RunningNode> {
    if (values.standalone) {
      const node = await startStandaloneServer({ path, addr, log, statusAddr, tls });
      log.info(
        { addr, status_addr: node.statusAddr, path, mode: "standalone", tls: tls?.subject ?? false },
        "tinykv-server ready",
      );
      return node;
    }
    const loaded = loadConfig(values.config as string | undefined);
    const config = {
      ...loaded,
      ...(leaseReads === undefined ? {} : { leaseReads }),
      ...(resolvedTsIntervalMs === undefined ? {} : { resolvedTsIntervalMs }),
    };
    const scheduler = (values.scheduler as string)
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    const node = await startRaftNode({
      path,
      addr,
      scheduler,
      config,
      log,
      statusAddr,
      slowMs,
      ...advertise,
      tls,
      onFatal: exitOnDiskError,
    });
    log.info(
      {
        addr,
        advertise_addr: advertise.advertiseAddr,
        status_addr: node.statusAddr,
        path,
        store_id: String(node.storeId),
        scheduler,
        tls: tls?.subject ?? false,
      },
      "tinykv-server ready",
    );
    return node;
  }
}

function advertiseAddrs(
  values: Record<string, unknown>,
  addr: string,
  statusAddr: string | undefined,
): { advertiseAddr: string; advertiseStatusAddr?: string } {
  try {
    const advertiseAddr = resolveAdvertiseAddr(
      "--advertise-addr",
      values["advertise-addr"] as string | undefined,
      addr,
      "--addr",
    );
    const given = values["advertise-status-addr"] as string | undefined;
    if (!statusAddr) return { advertiseAddr };
    // A wildcard status listener with no advertise flag is not an error: nothing dials it by name.
    const advertiseStatusAddr =
      given === undefined
        ? statusAddr
        : resolveAdvertiseAddr("--advertise-status-addr", given, statusAddr, "--status-addr");
    return { advertiseAddr, advertiseStatusAddr };
  } catch (err) {
    if (err instanceof AdvertiseAddrError) fatal(BINARY, err.message, 2);
    throw err;
  }
}

/** The store stopped itself after a disk error: exit, so the scheduler sees it gone (no zombie answering errors). */
function exitOnDiskError(err: unknown): never {
  fatal(BINARY, `the store stopped after a disk error: ${err instanceof Error ? err.message : String(err)}`);
}

function parseBoolFlag(flag: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === "true") return true;
  if (value === "false") return false;
  return fatal(BINARY, `${flag} must be true or false, got ${JSON.stringify(value)}`, 2);
}

function loadConfig(file: string | undefined) {
  if (!file) return DEFAULT_RAFTSTORE_CONFIG;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    fatal(BINARY, `cannot read --config ${file}: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    fatal(BINARY, `--config ${file} must hold a JSON object`);
  try {
    return resolveConfig(parsed as Record<string, unknown>);
  } catch (err) {
    if (err instanceof ConfigError) fatal(BINARY, `--config ${file}: ${err.message}`);
    throw err;
  }
}

main().catch((err: unknown) => fatal(BINARY, err instanceof Error ? err.message : String(err)));
