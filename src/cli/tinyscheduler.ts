#!/usr/bin/env node
import { AddressInUseError, SchedulerServer } from "../scheduler/server.js";
import { DataDirLockedError } from "../scheduler/meta-kv.js";
import { createLogger } from "../util/logger.js";
import { realRuntime } from "../util/runtime.js";
import { fatal, onShutdownSignal, parseFlags, quietGrpcUnlessDebug } from "./common.js";

const USAGE = `Usage: tinyscheduler [flags]

The tinykv-ts scheduler: TSO, id allocation, bootstrap, region routing and balancing.

Flags:
  --addr <host:port>         gRPC listen address (default 127.0.0.1:2379)
  --data-dir <dir>           metadata directory (default data/scheduler)
  --status-addr <host:port>  JSON status API over HTTP; "" disables it (default 127.0.0.1:2381)
  --log-level <level>        fatal|error|warn|info|debug|trace (default $LOG_LEVEL or info)
  --max-replicas <n>         replicas per region, written at bootstrap (default 3)
  -h, --help                 show this help
`;

const LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);
const BIN = "tinyscheduler";

function die(msg: string): never {
  fatal(BIN, msg, 1);
}

async function main(): Promise<void> {
  const { values: v } = parseFlags(BIN, USAGE, {
    addr: { type: "string", default: "127.0.0.1:2379" },
    "data-dir": { type: "string", default: "data/scheduler" },
    "status-addr": { type: "string", default: "127.0.0.1:2381" },
    "log-level": { type: "string", default: process.env.LOG_LEVEL ?? "info" },
    "max-replicas": { type: "string", default: "3" },
  });
  const values = v as Record<string, string>;
  const level = values["log-level"]!.toLowerCase();
  if (!LEVELS.has(level)) die(`invalid --log-level ${JSON.stringify(level)}`);
  const maxReplicas = Number(values["max-replicas"]);
  if (!Number.isInteger(maxReplicas) || maxReplicas < 1) die(`invalid --max-replicas ${JSON.stringify(values["max-replicas"])}`);
  if (!/^[^:]*:\d+$/.test(values.addr!) && !/^\[.*\]:\d+$/.test(values.addr!)) die(`invalid --addr ${JSON.stringify(values.addr)}: want host:port`);

  quietGrpcUnlessDebug(level);
  const log = createLogger(level, "tinyscheduler");
  let server: SchedulerServer;
  try {
    server = await SchedulerServer.start({
      addr: values.addr!,
      statusAddr: values["status-addr"] || undefined,
      dataDir: values["data-dir"]!,
      maxReplicas,
      log,
      runtime: realRuntime,
    });
  } catch (err) {
    if (err instanceof AddressInUseError || err instanceof DataDirLockedError) die(err.message);
    die(`cannot start: ${(err as Error).message}`);
  }
  process.stderr.write(
    `tinyscheduler listening on ${server.addr}` +
      (server.statusAddr ? `, status on http://${server.statusAddr}` : "") +
      ` (cluster id ${server.clusterId})\n`,
  );

  onShutdownSignal(async () => {
    log.info("stopping on signal");
    const force = setTimeout(() => process.exit(1), 5000);
    force.unref();
    await server.stop();
  });
}

main().catch((err) => die((err as Error).message));
