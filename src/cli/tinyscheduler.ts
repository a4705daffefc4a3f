#!/usr/bin/env node
import "./v8-tiering.js";
import { AddressInUseError, SchedulerServer } from "../scheduler/server/server.js";
import { DataDirLockedError } from "../scheduler/core/meta-kv.js";
import { InitialClusterError } from "../scheduler/replication/members.js";
import { ReplicatedSchedulerServer } from "../scheduler/replication/replicated-server.js";
import type { CompactionPolicy } from "../scheduler/replication/member-storage.js";
import { DEFAULT_COMPACTION, checkCompactionPolicy } from "../scheduler/replication/member-storage.js";
import { createLogger } from "../util/logger.js";
import { realRuntime } from "../util/runtime.js";
import type { TlsConfig } from "../util/tls.js";
import { TLS_FLAG_OPTIONS, TlsConfigError, tlsFlagsUsage, tlsFromFlags, urlScheme } from "../util/tls.js";
import { AdvertiseAddrError, resolveAdvertiseAddr } from "./advertise.js";
import { fatal, onShutdownSignal, parseFlags, quietGrpcUnlessDebug } from "./common.js";

const USAGE = `Usage: tinyscheduler [flags]

The tinykv-ts scheduler: TSO, id allocation, bootstrap, region routing and balancing.

Flags:
  --addr <host:port>         gRPC listen address (default 127.0.0.1:2379; 0.0.0.0:2379 for every interface)
  --advertise-addr <host:port>  client URL that GetMembers hands to stores and clients
                             (default --addr; must be routable, so not 0.0.0.0)
  --data-dir <dir>           metadata directory (default data/scheduler)
  --status-addr <host:port>  JSON status API over HTTP; "" disables it (default 127.0.0.1:2381)
  --advertise-status-addr <host:port>  status address printed at start-up (default --status-addr)
  --log-level <level>        fatal|error|warn|info|debug|trace (default $LOG_LEVEL or info)
  --max-replicas <n>         replicas per region, written at bootstrap (default 3)
${tlsFlagsUsage(29)}                             with them gRPC and the status API are mutual TLS (HTTPS)

Replication (leave out for a single scheduler; give all three for one member of 3 or 5):
  --name <name>              this member's name in --initial-cluster
  --initial-cluster <list>   every member's peer address, the same list on every member:
                             s1=127.0.0.1:2380,s2=127.0.0.1:2382,s3=127.0.0.1:2384
  --peer-addr <host:port>    where this member's peer (raft) service listens
                             (default: its address in --initial-cluster)
  --initial-cluster-state <new|existing>  "new" (default) starts a group of --initial-cluster;
                             "existing" joins a running group after
                             \`tinykv-ctl scheduler member add NAME PEER_ADDR\`
                             (--initial-cluster then names the running members and this one)
  --snapshot-count <n>       applied raft entries between two snapshots of the metadata, after
                             which the raft log is truncated (default 10000)
  --snapshot-catchup-entries <n>  entries kept before a snapshot for a follower slightly behind
                             (default 1000; below --snapshot-count)
  Only the leader serves; the others answer GetMembers and say who leads. Give stores and
  clients every member's --addr, comma-separated (--scheduler a,b,c).
  -h, --help                 show this help
`;

const LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);
const BIN = "tinyscheduler";

function die(msg: string): never {
  fatal(BIN, msg, 1);
}

function compactionFromFlags(values: Record<string, string | undefined>): CompactionPolicy {
  const count = (flag: string, fallback: number) => {
    const raw = values[flag];
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw)) die(`invalid --${flag} ${JSON.stringify(raw)}: want a whole number`);
    return Number(raw);
  };
  const policy = {
    snapshotCount: count("snapshot-count", DEFAULT_COMPACTION.snapshotCount),
    catchupEntries: count("snapshot-catchup-entries", DEFAULT_COMPACTION.catchupEntries),
  };
  // A smaller --snapshot-count alone lowers the default catch-up to fit under it.
  if (values["snapshot-catchup-entries"] === undefined)
    policy.catchupEntries = Math.min(policy.catchupEntries, Math.floor(policy.snapshotCount / 10));
  try {
    checkCompactionPolicy(policy);
  } catch (err) {
    fatal(BIN, `invalid --snapshot-count/--snapshot-catchup-entries: ${(err as Error).message}`, 2);
  }
  return policy;
}

async function main(): Promise<void> {
  const { values: v } = parseFlags(BIN, USAGE, {
    addr: { type: "string", default: "127.0.0.1:2379" },
    "data-dir": { type: "string", default: "data/scheduler" },
    "status-addr": { type: "string", default: "127.0.0.1:2381" },
    "advertise-addr": { type: "string" },
    "advertise-status-addr": { type: "string" },
    "log-level": { type: "string", default: process.env.LOG_LEVEL ?? "info" },
    "max-replicas": { type: "string", default: "3" },
    name: { type: "string" },
    "initial-cluster": { type: "string" },
    "peer-addr": { type: "string" },
    "initial-cluster-state": { type: "string" },
    "snapshot-count": { type: "string" },
    "snapshot-catchup-entries": { type: "string" },
    ...TLS_FLAG_OPTIONS,
  });
  const values = v as Record<string, string>;
  const level = values["log-level"]!.toLowerCase();
  if (!LEVELS.has(level)) die(`invalid --log-level ${JSON.stringify(level)}`);
  const maxReplicas = Number(values["max-replicas"]);
  if (!Number.isInteger(maxReplicas) || maxReplicas < 1)
    die(`invalid --max-replicas ${JSON.stringify(values["max-replicas"])}`);
  if (!/^[^:]*:\d+$/.test(values.addr!) && !/^\[.*\]:\d+$/.test(values.addr!))
    die(`invalid --addr ${JSON.stringify(values.addr)}: want host:port`);

  let advertiseAddr: string | undefined;
  let advertiseStatusAddr: string | undefined;
  try {
    advertiseAddr = resolveAdvertiseAddr("--advertise-addr", values["advertise-addr"], values.addr!, "--addr");
    // Port 0 (pick one) stays unresolved here; the server then advertises the port it bound.
    if (advertiseAddr.endsWith(":0")) advertiseAddr = undefined;
    if (values["advertise-status-addr"] !== undefined)
      advertiseStatusAddr = resolveAdvertiseAddr(
        "--advertise-status-addr",
        values["advertise-status-addr"],
        values["status-addr"]!,
        "--status-addr",
      );
  } catch (err) {
    if (err instanceof AdvertiseAddrError) fatal(BIN, err.message, 2);
    throw err;
  }

  let tls: TlsConfig | undefined;
  try {
    tls = tlsFromFlags(values);
  } catch (err) {
    if (err instanceof TlsConfigError) fatal(BIN, err.message, 2);
    throw err;
  }

  quietGrpcUnlessDebug(level);
  const log = createLogger(level, "tinyscheduler");
  const replicated = values["initial-cluster"] !== undefined;
  if (!replicated && (values.name !== undefined || values["peer-addr"] !== undefined))
    die("--name and --peer-addr need --initial-cluster (a single scheduler takes none of them)");
  if (replicated && !values.name) die("--initial-cluster needs --name (this member's name in the list)");
  const compaction = replicated ? compactionFromFlags(values) : undefined;
  const state = values["initial-cluster-state"];
  if (state !== undefined && !replicated) die("--initial-cluster-state needs --initial-cluster");
  if (state !== undefined && state !== "new" && state !== "existing")
    fatal(BIN, `invalid --initial-cluster-state ${JSON.stringify(state)}: want new or existing`, 2);
  if (!replicated && (values["snapshot-count"] !== undefined || values["snapshot-catchup-entries"] !== undefined))
    die(
      "--snapshot-count and --snapshot-catchup-entries need --initial-cluster (a single scheduler keeps no raft log)",
    );
  const serverOpts = {
    addr: values.addr!,
    statusAddr: values["status-addr"] || undefined,
    advertiseAddr,
    advertiseStatusAddr,
    dataDir: values["data-dir"]!,
    maxReplicas,
    log,
    runtime: realRuntime,
    tls,
  };
  let server: SchedulerServer | ReplicatedSchedulerServer;
  try {
    server = replicated
      ? await ReplicatedSchedulerServer.start(serverOpts, {
          name: values.name!,
          initialCluster: values["initial-cluster"]!,
          peerAddr: values["peer-addr"],
          compaction,
          initialClusterState: state,
          onFatal: (err) => die(`member stopped: cannot persist its raft state: ${(err as Error).message}`),
        })
      : await SchedulerServer.start(serverOpts);
  } catch (err) {
    if (err instanceof InitialClusterError) fatal(BIN, err.message, 2);
    if (err instanceof AddressInUseError || err instanceof DataDirLockedError) die(err.message);
    die(`cannot start: ${(err as Error).message}`);
  }
  process.stderr.write(
    `tinyscheduler ${server instanceof ReplicatedSchedulerServer ? `member ${values.name} ` : ""}listening on ${server.addr}` +
      (advertiseAddr && advertiseAddr !== server.addr ? `, advertising ${advertiseAddr}` : "") +
      (server.statusAddr ? `, status on ${urlScheme(tls)}://${server.statusAddr}` : "") +
      (tls ? `, mutual TLS as ${tls.subject}` : "") +
      (server instanceof ReplicatedSchedulerServer ? "" : ` (cluster id ${server.clusterId})`) +
      "\n",
  );

  onShutdownSignal(async () => {
    log.info("stopping on signal");
    const force = setTimeout(() => process.exit(1), 5000);
    force.unref();
    await server.stop();
  });
}

main().catch((err) => die((err as Error).message));
