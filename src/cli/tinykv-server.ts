#!/usr/bin/env node
import { mkdirSync, accessSync, constants } from "node:fs";
import { EngineOpenError } from "../kv/engine/index.js";
import { PortInUseError } from "../kv/server/index.js";
import { createLogger } from "../util/logger.js";
import { fatal, onShutdownSignal, parseFlags, quietGrpcUnlessDebug } from "./common.js";
import { startStandaloneServer } from "./standalone-node.js";

const BINARY = "tinykv-server";
const USAGE = `Usage: tinykv-server [flags]

  --path <dir>          data directory (default: data)
  --addr <host:port>    address to listen on and advertise (default: 127.0.0.1:20160)
  --scheduler <addrs>   scheduler address(es), comma-separated (default: 127.0.0.1:2379)
  --standalone          serve from one local LevelDB without Raft or a scheduler (lab 1 mode)
  --config <file>       JSON file with raftstore settings (see README)
  --log-level <level>   fatal, error, warn, info, debug (default: info, or $LOG_LEVEL)
  -h, --help            show this help
`;

async function main(): Promise<void> {
  const { values } = parseFlags(BINARY, USAGE, {
    path: { type: "string", default: "data" },
    addr: { type: "string", default: "127.0.0.1:20160" },
    scheduler: { type: "string", default: "127.0.0.1:2379" },
    standalone: { type: "boolean", default: false },
    config: { type: "string" },
    "log-level": { type: "string", default: process.env.LOG_LEVEL ?? "info" },
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

  if (!values.standalone) {
    fatal(BINARY, "raft mode is not available in this build yet; start with --standalone");
  }
  try {
    const node = await startStandaloneServer({ path, addr, log });
    log.info({ addr, path, port: node.port, mode: "standalone" }, "tinykv-server ready");
    onShutdownSignal(async () => {
      log.info("shutting down");
      await node.stop();
    });
  } catch (err) {
    if (err instanceof PortInUseError || err instanceof EngineOpenError) fatal(BINARY, err.message);
    throw err;
  }
}

main().catch((err: unknown) => fatal(BINARY, err instanceof Error ? err.message : String(err)));
