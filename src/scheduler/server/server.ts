import { once } from "node:events";
import type { Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "@grpc/grpc-js";
import { SchedulerService } from "../../proto/schedulerpb.js";
import type { Logger } from "../../util/logger.js";
import { silentLogger } from "../../util/logger.js";
import type { Runtime } from "../../util/runtime.js";
import { realRuntime } from "../../util/runtime.js";
import type { TlsConfig } from "../../util/tls.js";
import { grpcServerCredentials, urlScheme } from "../../util/tls.js";
import { logGrpcTlsRefusals } from "../../util/tls-refusals.js";
import type { CoreOptions } from "../core/core.js";
import { SchedulerCore } from "../core/core.js";
import { HeartbeatStreams } from "./heartbeat-streams.js";
import type { MetaKV } from "../core/meta-kv.js";
import { LevelMetaKV } from "../core/meta-kv.js";
import { createSchedulerService } from "./service.js";
import { createStatusServer } from "./status-http.js";

export interface SchedulerServerOptions extends CoreOptions {
  /** gRPC listen address host:port (port 0 picks a free one). */
  addr: string;
  /** HTTP status listen address host:port; empty disables it. */
  statusAddr?: string;
  /** The client URL GetMembers hands out (host:port); default the bound gRPC address. */
  advertiseAddr?: string;
  /** The status address reported in the start-up log and by `statusAddr`; default the bound one. */
  advertiseStatusAddr?: string;
  /** Where metadata lives (classic-level under <dataDir>/meta). Ignored when `kv` is given. */
  dataDir?: string;
  kv?: MetaKV;
  log?: Logger;
  /** Mutual TLS on the gRPC and status listeners (clients must present a certificate signed by its CA). */
  tls?: TlsConfig;
}

/** The address is taken by another process. */
export class AddressInUseError extends Error {
  constructor(
    readonly addr: string,
    what: string,
  ) {
    super(`${what} address ${addr} is already in use`);
    this.name = "AddressInUseError";
  }
}

/** A running tinyscheduler: the gRPC service, the status API and the core. */
export class SchedulerServer {
  private constructor(
    readonly core: SchedulerCore,
    private readonly grpc: Server,
    private readonly http: HttpServer | undefined,
    private readonly streams: HeartbeatStreams,
    /** Actual gRPC address (host:port) after binding. */
    readonly addr: string,
    readonly statusAddr: string | undefined,
    private readonly log: Logger,
    private readonly runtime: Runtime,
  ) {}

  static async start(opts: SchedulerServerOptions): Promise<SchedulerServer> {
    const log = opts.log ?? silentLogger;
    const runtime = opts.runtime ?? realRuntime;
    const kv = opts.kv ?? (await LevelMetaKV.open(opts.dataDir ?? "data/scheduler"));
    let core: SchedulerCore | undefined;
    const grpc = new Server({ "grpc.max_receive_message_length": 10 * 1024 * 1024 });
    let http: HttpServer | undefined;
    try {
      core = await SchedulerCore.open(kv, { ...opts, log, runtime });
      const { host } = splitHostPort(opts.addr);
      const port = await bindGrpc(grpc, opts.addr, opts.tls);
      if (opts.tls) logGrpcTlsRefusals(grpc, log, "grpc");
      const addr = `${host}:${port}`;
      const streams = new HeartbeatStreams(core.clusterId, core.cluster.clock, runtime, log);
      core.oc.setSink((cmd) => streams.send(cmd));
      grpc.addService(
        SchedulerService,
        createSchedulerService(
          core,
          streams,
          { name: "tinyscheduler", clientUrl: `${urlScheme(opts.tls)}://${opts.advertiseAddr ?? addr}` },
          log,
        ),
      );
      let statusAddr: string | undefined;
      if (opts.statusAddr) {
        http = createStatusServer(core, log, opts.tls);
        statusAddr = await listenStatusServer(http, opts.statusAddr, opts.advertiseStatusAddr);
      }
      streams.startKeepAlive();
      core.start();
      log.info(
        { addr, advertise_addr: opts.advertiseAddr, status_addr: statusAddr, cluster_id: core.clusterId.toString() },
        "tinyscheduler started",
      );
      return new SchedulerServer(core, grpc, http, streams, addr, statusAddr, log, runtime);
    } catch (err) {
      grpc.forceShutdown();
      http?.close();
      if (core) await core.close();
      else await kv.close();
      throw err;
    }
  }

  get clusterId(): bigint {
    return this.core.clusterId;
  }

  /** Stops accepting calls, ends streams, flushes and closes the metadata store. */
  async stop(): Promise<void> {
    this.streams.closeAll();
    await new Promise<void>((resolve) => {
      const t = this.runtime.setTimeout(() => {
        this.grpc.forceShutdown();
        resolve();
      }, 2000);
      this.grpc.tryShutdown(() => {
        this.runtime.clearTimeout(t);
        resolve();
      });
    });
    if (this.http) {
      this.http.closeAllConnections();
      await new Promise<void>((r) => this.http!.close(() => r()));
    }
    await this.core.close();
    this.log.info("tinyscheduler stopped");
  }
}

export function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(":");
  const host = i > 0 ? addr.slice(0, i).replace(/^\[|\]$/g, "") : "127.0.0.1";
  const port = Number(i >= 0 ? addr.slice(i + 1) : addr);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`invalid address ${JSON.stringify(addr)}: want host:port`);
  return { host, port };
}

/** Listens on `addr`; resolves to the address to print (the advertised one, else host:bound port). */
export async function listenStatusServer(http: HttpServer, addr: string, advertise?: string): Promise<string> {
  const s = splitHostPort(addr);
  http.listen(s.port, s.host);
  await Promise.race([
    once(http, "listening"),
    once(http, "error").then(([err]) => {
      throw (err as NodeJS.ErrnoException).code === "EADDRINUSE" ? new AddressInUseError(addr, "status") : err;
    }),
  ]);
  return advertise ?? `${s.host}:${(http.address() as AddressInfo).port}`;
}

export function bindGrpc(server: Server, addr: string, tls: TlsConfig | undefined, what = "gRPC"): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(addr, grpcServerCredentials(tls), (err, port) => {
      if (err) {
        reject(
          /address already in use|EADDRINUSE|No address added/i.test(err.message)
            ? new AddressInUseError(addr, what)
            : err,
        );
      } else resolve(port);
    });
  });
}
