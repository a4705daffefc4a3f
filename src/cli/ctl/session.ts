// The CtlContext of a tinykv-ctl process: connects to the cluster on the first command that needs it.
import { KvClient } from "../../client/client.js";
import type { Logger } from "../../util/logger.js";
import { errorMessage } from "../../util/retry.js";
import type { TlsConfig } from "../../util/tls.js";
import { StatusApi } from "../ctl-status-api.js";
import type { CtlContext } from "./command.js";

export interface CtlSessionOptions {
  /** Scheduler address(es), comma-separated. */
  scheduler: string;
  /** The scheduler's status API address (host:port). */
  statusAddr: string;
  timeoutMs: number;
  log?: Logger;
  out: (line: string) => void;
  /** Mutual TLS to the scheduler, the stores and the status APIs; default plaintext. */
  tls?: TlsConfig;
}

export class CtlSession implements CtlContext {
  readonly scheduler: string;
  readonly timeoutMs: number;
  readonly status: StatusApi;
  readonly out: (line: string) => void;
  readonly tls: TlsConfig | undefined;
  private client: KvClient | undefined;
  private connecting: Promise<KvClient> | undefined;

  constructor(private readonly opts: CtlSessionOptions) {
    this.scheduler = opts.scheduler;
    this.timeoutMs = opts.timeoutMs;
    this.status = new StatusApi(opts.statusAddr, opts.timeoutMs, opts.tls);
    this.out = opts.out;
    this.tls = opts.tls;
  }

  kv(): Promise<KvClient> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= KvClient.connect({
      scheduler: this.scheduler,
      timeoutMs: this.timeoutMs,
      connectTimeoutMs: Math.min(this.timeoutMs, 5000),
      log: this.opts.log,
      tls: this.opts.tls,
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
