// In-process members of a replicated scheduler over loopback gRPC, each on its own data dir.
import type { MemberTiming } from "../../src/scheduler/replication/member.js";
import type { CompactionPolicy } from "../../src/scheduler/replication/member-storage.js";
import type { InitialClusterState } from "../../src/scheduler/replication/join.js";
import { ErrorType } from "../../src/proto/schedulerpb.js";
import { SchedulerRpcClient } from "../../src/scheduler/client/client.js";
import { SchedulerError } from "../../src/scheduler/errors.js";
import { ReplicatedSchedulerServer } from "../../src/scheduler/replication/replicated-server.js";
import { createLogger, silentLogger } from "../../src/util/logger.js";
import type { TlsConfig } from "../../src/util/tls.js";
import { freePort } from "../harness/ports.js";
import { tempDir, waitFor } from "../harness/wait.js";

/** Short ticks so elections take about a second (lease 250 ms: loose enough for a loaded machine). */
export const TEST_TIMING: MemberTiming = { tickMs: 50, electionTicks: 10, heartbeatTicks: 2 };

export class MemberGroup {
  readonly servers = new Map<string, ReplicatedSchedulerServer>();
  private constructor(
    readonly names: string[],
    readonly initialCluster: string,
    readonly clientPorts: Map<string, number>,
    private readonly dirs: Map<string, { path: string; cleanup: () => void }>,
    /** Mutual TLS on every member's client and peer ports. */
    readonly tls?: TlsConfig,
    /** When members snapshot and truncate their logs (default: the product's). */
    readonly compaction?: CompactionPolicy,
  ) {}

  static async create(n: number, tls?: TlsConfig, compaction?: CompactionPolicy): Promise<MemberGroup> {
    const names = Array.from({ length: n }, (_, i) => `s${i + 1}`);
    const peers: string[] = [];
    const clientPorts = new Map<string, number>();
    const dirs = new Map<string, { path: string; cleanup: () => void }>();
    for (const name of names) {
      peers.push(`${name}=127.0.0.1:${await freePort()}`);
      clientPorts.set(name, await freePort());
      dirs.set(name, tempDir(`tinysched-${name}-`));
    }
    return new MemberGroup(names, peers.join(","), clientPorts, dirs, tls, compaction);
  }

  addr(name: string): string {
    return `127.0.0.1:${this.clientPorts.get(name)}`;
  }

  /** Every member's client address, comma-separated, in the given order. */
  addrs(order = this.names): string {
    return order.map((n) => this.addr(n)).join(",");
  }

  /** The `name=peer` entries of these members, as --initial-cluster lists them. */
  clusterOf(names: readonly string[]): string {
    return this.initialCluster
      .split(",")
      .filter((e) => names.includes(e.split("=")[0]!))
      .join(",");
  }

  peerAddr(name: string): string {
    return this.clusterOf([name]).split("=")[1]!;
  }

  /**
   * Starts one member; `initialCluster` overrides the group's list (a misconfigured member, or a
   * group started from some of the names), `state` "existing" joins a running group.
   */
  async start(
    name: string,
    initialCluster = this.initialCluster,
    state?: InitialClusterState,
  ): Promise<ReplicatedSchedulerServer> {
    const s = await ReplicatedSchedulerServer.start(
      {
        addr: this.addr(name),
        dataDir: this.dirs.get(name)!.path,
        // TEST_LOG_LEVEL=info shows the members' elections and take-overs.
        log: process.env.TEST_LOG_LEVEL ? createLogger(process.env.TEST_LOG_LEVEL) : silentLogger,
        tls: this.tls,
      },
      {
        name,
        initialCluster,
        timing: TEST_TIMING,
        compaction: this.compaction,
        initialClusterState: state,
        joinDeadlineMs: 3000,
      },
    );
    this.servers.set(name, s);
    return s;
  }

  dataDir(name: string): string {
    return this.dirs.get(name)!.path;
  }

  /** Stops a member and gives it an empty data dir (a disk that was replaced). */
  async wipe(name: string): Promise<void> {
    await this.stop(name);
    this.dirs.get(name)!.cleanup();
    this.dirs.set(name, tempDir(`tinysched-${name}-wiped-`));
  }

  async startAll(): Promise<void> {
    await Promise.all(this.names.map((n) => this.start(n)));
  }

  async stop(name: string): Promise<void> {
    const s = this.servers.get(name);
    this.servers.delete(name);
    await s?.stop();
  }

  /** The member that serves (has a core), waiting for one. */
  async leader(what = "a scheduler leader to serve", timeoutMs = 20_000): Promise<string> {
    return waitFor(() => [...this.servers.entries()].find(([, s]) => s.core !== undefined)?.[0], {
      timeoutMs,
      message: what,
    });
  }

  async close(): Promise<void> {
    for (const n of [...this.servers.keys()]) await this.stop(n);
    for (const d of this.dirs.values()) d.cleanup();
  }
}

/**
 * Bootstraps through the client. The client retries a call that timed out, and the retry of a
 * bootstrap that did apply answers ALREADY_BOOTSTRAPPED: for these tests that is done too.
 */
export async function bootstrap(client: SchedulerRpcClient): Promise<void> {
  try {
    await client.bootstrap({ id: 1n, address: "127.0.0.1:20001" });
  } catch (err) {
    if (!(err instanceof SchedulerError && err.type === ErrorType.ALREADY_BOOTSTRAPPED)) throw err;
  }
}

/** A client of `names`, patient with raft round trips; `cleanups` closes it after the test. */
export async function connectClient(
  group: MemberGroup,
  names: string[],
  cleanups: Array<() => Promise<unknown> | unknown>,
): Promise<SchedulerRpcClient> {
  const client = await SchedulerRpcClient.connect(group.addrs(names), {
    connectDeadlineMs: 15_000,
    retryDeadlineMs: 15_000,
    // Calls wait on raft round trips: on a loaded machine 1 s is short, and a retried call may
    // find its first attempt applied.
    timeoutMs: 5_000,
  });
  cleanups.push(() => client.close());
  return client;
}
