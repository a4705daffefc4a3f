// tinykv-ctl's commands that talk to the scheduler's HTTP status API: operators with the reasons
// behind them, and store state changes (drain a store, tombstone a drained one).
import { errorMessage } from "../util/retry.js";
import type { StatusResponse } from "../util/status-client.js";
import { requestStatus } from "../util/status-client.js";
import type { TlsConfig } from "../util/tls.js";

export const STORE_STATES = ["up", "offline", "tombstone"] as const;
export type StoreStateName = (typeof STORE_STATES)[number];

/** The status API answered with an error (its message is the scheduler's, e.g. why a tombstone was refused). */
export class StatusApiError extends Error {
  override name = "StatusApiError";
}

interface StoreScoreJson {
  store_id: string;
  score: number;
  reported_score: number;
}

interface DecisionJson {
  scheduler: string;
  why: string;
  source: StoreScoreJson | null;
  target: StoreScoreJson | null;
  region_size_mib: number | null;
  tolerance_mib: number | null;
  limits_hit: string[];
}

interface OperatorJson {
  region_id: string;
  desc: string;
  kind: string;
  status: string;
  current_step: number;
  steps: string[];
  decision: DecisionJson | null;
}

/** The status address answered but does not serve (a replicated scheduler's follower: HTTP 503). */
class StatusNotServingError extends StatusApiError {}
/** The status address did not answer at all. */
class StatusUnreachableError extends Error {}

/**
 * The scheduler's status API at one address, or at several comma-separated ones (the members of
 * a replicated scheduler): each is tried in turn until one serves, as only the leader's does.
 */
export class StatusApi {
  private readonly addrs: string[];

  constructor(
    readonly addr: string,
    private readonly timeoutMs: number,
    /** HTTPS with this client certificate (the scheduler's status API then wants one). */
    private readonly tls?: TlsConfig,
  ) {
    this.addrs = addr
      .split(",")
      .map((a) => a.trim())
      .filter((a) => a.length > 0);
    if (this.addrs.length === 0) this.addrs = [addr];
  }

  private async request(method: "GET" | "POST", path: string): Promise<unknown> {
    let last: unknown;
    for (const addr of this.addrs) {
      try {
        return await this.requestAt(addr, method, path);
      } catch (err) {
        // Another member may be the one that serves; a follower's 503 changed nothing.
        if (!(err instanceof StatusNotServingError || err instanceof StatusUnreachableError)) throw err;
        last = err;
      }
    }
    throw last;
  }

  private async requestAt(addr: string, method: "GET" | "POST", path: string): Promise<unknown> {
    let res: StatusResponse;
    try {
      res = await requestStatus(addr, path, { method, timeoutMs: this.timeoutMs, tls: this.tls });
    } catch (err) {
      throw new StatusUnreachableError(
        `cannot reach the scheduler's status API at ${addr} (tinyscheduler --status-addr; set --status): ${errorMessage(err)}`,
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(res.text);
    } catch (err) {
      throw new Error(
        `the status API at ${addr} answered ${method} ${path} with HTTP ${res.status} and no JSON: ${errorMessage(err)}`,
      );
    }
    if (!res.ok) {
      const msg = isRecord(body) && typeof body.error === "string" ? body.error : `HTTP ${res.status}`;
      throw res.status === 503 ? new StatusNotServingError(`${addr}: ${msg}`) : new StatusApiError(msg);
    }
    return body;
  }

  async operators(): Promise<{ running: OperatorJson[]; recent: OperatorJson[] }> {
    const body = await this.request("GET", "/operators");
    if (!isRecord(body) || !Array.isArray(body.running) || !Array.isArray(body.recent)) {
      throw new Error(`the status API at ${this.addr} answered /operators with an unexpected shape`);
    }
    return { running: body.running.filter(isOperator), recent: body.recent.filter(isOperator) };
  }

  async setStoreState(storeId: bigint, state: StoreStateName): Promise<void> {
    await this.request("POST", `/stores/${storeId}/state/${state}`);
  }
}

/** Lines for `tinykv-ctl operators`: running ones first, then how recent ones ended, each with its reasons. */
export function formatOperators(ops: { running: OperatorJson[]; recent: OperatorJson[] }): string[] {
  const lines: string[] = [];
  const show = (op: OperatorJson) => {
    const step =
      op.status === "RUNNING" ? ` step ${Math.min(op.current_step + 1, op.steps.length)}/${op.steps.length}` : "";
    lines.push(`region ${op.region_id}  ${op.status}${step}  ${op.desc}`);
    lines.push(`  steps: ${op.steps.join(" -> ")}`);
    const d = op.decision;
    if (!d) return;
    lines.push(`  why: ${d.scheduler}: ${d.why}`);
    const figures: string[] = [];
    const score = (label: string, s: StoreScoreJson) =>
      `${label} store ${s.store_id} score ${s.score}` +
      (s.score !== s.reported_score ? ` (reported ${s.reported_score})` : "");
    if (d.source) figures.push(score("source", d.source));
    if (d.target) figures.push(score("target", d.target));
    if (d.region_size_mib !== null) figures.push(`region size ${d.region_size_mib} MiB`);
    if (d.tolerance_mib !== null) figures.push(`tolerance ${d.tolerance_mib} MiB`);
    if (figures.length > 0) lines.push(`  ${figures.join(", ")}`);
    if (d.limits_hit.length > 0) lines.push(`  limits hit: ${d.limits_hit.join("; ")}`);
  };
  lines.push(`running operators: ${ops.running.length}`);
  ops.running.forEach(show);
  // The newest endings are the interesting ones; the history holds up to 1024.
  const recent = ops.recent.slice(-20);
  lines.push(
    `recently finished: ${ops.recent.length}${recent.length < ops.recent.length ? ` (last ${recent.length} shown)` : ""}`,
  );
  recent.forEach(show);
  return lines;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

function isOperator(v: unknown): v is OperatorJson {
  return (
    isRecord(v) &&
    typeof v.region_id === "string" &&
    typeof v.desc === "string" &&
    typeof v.status === "string" &&
    typeof v.current_step === "number" &&
    Array.isArray(v.steps) &&
    (v.decision === null ||
      (isRecord(v.decision) && typeof v.decision.why === "string" && Array.isArray(v.decision.limits_hit)))
  );
}
