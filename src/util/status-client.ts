/**
 * One request to a process's status address (/metrics, the scheduler's JSON API): plain HTTP as
 * always, or HTTPS with this process's certificate when TLS is configured (the status servers
 * then require one). Node's fetch cannot present a client certificate, hence node:https there.
 */
import { request } from "node:https";
import { splitStatusAddr } from "./http-status.js";
import type { TlsConfig } from "./tls.js";
import { urlScheme } from "./tls.js";

/** A status answer bigger than this is refused (ours are well under 1 MiB): the peer is not one of ours. */
const MAX_STATUS_BODY_BYTES = 16 << 20;

export interface StatusResponse {
  status: number;
  ok: boolean;
  text: string;
}

export interface StatusRequestOptions {
  method?: "GET" | "POST";
  timeoutMs: number;
  tls?: TlsConfig;
}

/** The URL of `path` at a status address, with the scheme TLS implies. */
export function statusUrl(addr: string, path: string, tls: TlsConfig | undefined): string {
  return `${urlScheme(tls)}://${addr}${path}`;
}

/** GETs (or POSTs) `path` at `addr`; rejects when the server cannot be reached or the deadline passes. */
export async function requestStatus(addr: string, path: string, opts: StatusRequestOptions): Promise<StatusResponse> {
  const method = opts.method ?? "GET";
  if (!opts.tls) {
    const res = await fetch(statusUrl(addr, path, undefined), { method, signal: AbortSignal.timeout(opts.timeoutMs) });
    return { status: res.status, ok: res.ok, text: await res.text() };
  }
  const { host, port } = splitStatusAddr(addr);
  const tls = opts.tls;
  return new Promise((resolve, reject) => {
    // No agent: status calls are rare, and a pooled socket would keep a finished tinykv-ctl alive.
    const req = request({ host, port, path, method, agent: false, ...tls.clientOptions() }, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > MAX_STATUS_BODY_BYTES)
          req.destroy(new Error(`${statusUrl(addr, path, tls)} answered more than ${MAX_STATUS_BODY_BYTES} bytes`));
        else chunks.push(chunk);
      });
      res.on("end", () => {
        const status = res.statusCode ?? 0;
        resolve({ status, ok: status >= 200 && status < 300, text: Buffer.concat(chunks).toString("utf8") });
      });
      res.on("error", reject);
    });
    req.setTimeout(opts.timeoutMs, () =>
      req.destroy(new Error(`no answer from ${statusUrl(addr, path, tls)} within ${opts.timeoutMs} ms`)),
    );
    req.on("error", reject);
    req.end();
  });
}
