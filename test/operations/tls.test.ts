// A cluster started with --cacert --cert --key (a scheduler and three stores, real processes):
// it serves clients that present a certificate of its CA, over gRPC and HTTPS, and refuses, with
// one log line on the server, a client with no certificate or a certificate from another CA.
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvClient } from "../../src/client/client.js";
import { GetMembersRequest, SchedulerClient } from "../../src/proto/schedulerpb.js";
import { requestStatus } from "../../src/util/status-client.js";
import { TlsConfig } from "../../src/util/tls.js";
import type { Proc } from "../harness/processes.js";
import { FAST_STORE_CONFIG, spawnNode } from "../harness/processes.js";
import { freePort } from "../harness/ports.js";
import { grpcPortWithFreeStatusPort } from "../observability/default-status-stores.js";
import type { TestCerts } from "../harness/tls-certs.js";
import { makeTestCerts, opensslMissing, tlsFlags } from "../harness/tls-certs.js";
import { tempDir, waitFor } from "../harness/wait.js";

const missing = opensslMissing();
if (missing) console.warn(missing);

const CTL = fileURLToPath(new URL("../../dist/src/cli/tinykv-ctl.js", import.meta.url));

/** One GetMembers with raw channel credentials: the gRPC status code, or "ok". */
function getMembers(addr: string, creds: grpc.ChannelCredentials): Promise<string> {
  const client = new SchedulerClient(addr, creds);
  return new Promise<string>((resolve) => {
    client.getMembers(GetMembersRequest.create(), new grpc.Metadata(), { deadline: Date.now() + 3000 }, (err) => {
      client.close();
      resolve(err ? grpc.status[err.code]! : "ok");
    });
  });
}

describe.skipIf(missing !== undefined)("TLS", () => {
  const dir = tempDir("tinykv-tls-");
  const procs: Proc[] = [];
  let certs: TestCerts;
  let scheduler: Proc;
  let schedulerAddr = "";
  let schedulerStatus = "";
  const stores: { addr: string; status: string; proc: Proc }[] = [];
  let clientTls: TlsConfig;
  let client: KvClient | undefined;

  const logs = () => procs.map((p) => p.output()).join("\n---\n");

  beforeAll(async () => {
    certs = makeTestCerts(dir.path);
    clientTls = TlsConfig.fromFiles(certs.client);
    schedulerAddr = `127.0.0.1:${await freePort()}`;
    schedulerStatus = `127.0.0.1:${await freePort()}`;
    scheduler = spawnNode("tinyscheduler.js", [
      "--addr",
      schedulerAddr,
      "--status-addr",
      schedulerStatus,
      "--data-dir",
      join(dir.path, "scheduler"),
      ...tlsFlags(certs.node),
    ]);
    procs.push(scheduler);
    const config = join(dir.path, "config.json");
    writeFileSync(config, JSON.stringify(FAST_STORE_CONFIG));
    for (let n = 1; n <= 3; n++) {
      // The status port at the gRPC port + 20, where the scheduler's dashboard scrapes a store.
      const port = await grpcPortWithFreeStatusPort();
      const addr = `127.0.0.1:${port}`;
      const status = `127.0.0.1:${port + 20}`;
      const proc = spawnNode("tinykv-server.js", [
        "--path",
        join(dir.path, `store${n}`),
        "--addr",
        addr,
        "--status-addr",
        status,
        "--scheduler",
        schedulerAddr,
        "--config",
        config,
        ...tlsFlags(certs.node),
      ]);
      procs.push(proc);
      stores.push({ addr, status, proc });
    }
  });

  afterAll(async () => {
    client?.close();
    for (const p of procs) {
      p.child.kill("SIGKILL");
      await p.exited;
    }
    dir.cleanup();
  });

  it("serves raw and transactional requests through src/client, and the status servers over HTTPS", {
    timeout: 120_000,
  }, async () => {
    client = await KvClient.connect({
      scheduler: schedulerAddr,
      tls: { caPem: clientTls.caPem, certPem: clientTls.certPem, keyPem: clientTls.keyPem },
      // Generous: on a loaded machine three stores and a scheduler take a while to come up.
      connectTimeoutMs: 30_000,
      timeoutMs: 30_000,
    });
    // Both writes are idempotent: on a loaded machine a leader change may leave one's outcome
    // unknown (the client then does not retry by itself), and writing it again is safe.
    const kv = client;
    await waitFor(() => kv.put("tls-raw", "over mutual TLS").then(() => true), {
      timeoutMs: 30_000,
      message: `the raw put over TLS never succeeded; output:\n${logs()}`,
    });
    expect((await client.get("tls-raw"))?.toString()).toBe("over mutual TLS");

    await waitFor(
      async () => {
        const txn = await kv.begin();
        txn.put("tls-txn-a", "1");
        txn.put("tls-txn-b", "2");
        await txn.commit();
        return true;
      },
      { timeoutMs: 30_000, message: `the transaction over TLS never committed; output:\n${logs()}` },
    );
    const reader = await client.begin();
    expect((await reader.get("tls-txn-a"))?.toString()).toBe("1");
    expect((await reader.get("tls-txn-b"))?.toString()).toBe("2");

    // All three stores joined over TLS (the region's replicas reach them store to store).
    await waitFor(async () => (await client!.getAllStores()).length === 3, {
      timeoutMs: 15_000,
      message: `three stores never registered over TLS; output:\n${logs()}`,
    });

    const metrics = await requestStatus(stores[0]!.status, "/metrics", { timeoutMs: 5000, tls: clientTls });
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/^# HELP /m);
    const status = await requestStatus(schedulerStatus, "/status", { timeoutMs: 5000, tls: clientTls });
    expect(status.status).toBe(200);
    expect(JSON.parse(status.text).bootstrapped).toBe(true);
    // The scheduler's dashboard scrapes the stores' HTTPS /metrics with its own certificate.
    await waitFor(
      async () => {
        const data = await requestStatus(schedulerStatus, "/dashboard/data", { timeoutMs: 5000, tls: clientTls });
        const scraped = (JSON.parse(data.text) as { store_metrics: { error?: string }[] }).store_metrics;
        return scraped.length === 3 && scraped.every((s) => s.error === undefined);
      },
      { timeoutMs: 15_000, message: "the dashboard never scraped all three stores over HTTPS" },
    );
    // The status port is HTTPS only.
    await expect(fetch(`http://${stores[0]!.status}/metrics`)).rejects.toThrow();
  });

  it("tinykv-ctl with the TLS flags reads keys, the scheduler's operators and a store's metrics over HTTPS", async () => {
    const ctl = (args: string[]) =>
      promisify(execFile)(process.execPath, [
        CTL,
        "--scheduler",
        schedulerAddr,
        "--status",
        schedulerStatus,
        "--timeout",
        "20000",
        ...tlsFlags(certs.client),
        ...args,
      ]);
    expect((await ctl(["get", "tls-raw"])).stdout).toContain("over mutual TLS");
    expect((await ctl(["operators"])).stdout).toContain("running operators:");
    expect((await ctl(["metrics", stores[1]!.status])).stdout).toContain(`https://${stores[1]!.status}/metrics`);
  });

  it("refuses a client with no certificate, and the server logs one line saying so", async () => {
    const caOnly = grpc.credentials.createSsl(readFileSync(certs.client.cacert));
    expect(await getMembers(schedulerAddr, caOnly)).toBe("UNAVAILABLE");
    await waitFor(
      () =>
        /refused a TLS connection from 127\.0\.0\.1:\d+: the peer presented no client certificate/.test(
          scheduler.output(),
        ),
      {
        timeoutMs: 5000,
        message: `the scheduler logged no refusal; its output:\n${scheduler.output()}`,
      },
    );

    // The same on a store's gRPC port and its HTTPS status port.
    expect(await getMembers(stores[0]!.addr, caOnly)).toBe("UNAVAILABLE");
    const httpsNoCert = new Promise<string>((resolve) => {
      const [host, port] = stores[2]!.status.split(":");
      const req = request(
        { host, port, path: "/metrics", ca: readFileSync(certs.client.cacert), agent: false },
        (res) => resolve(`HTTP ${res.statusCode}`),
      );
      req.on("error", (err) => resolve(`refused: ${err.message}`));
      req.end();
    });
    expect(await httpsNoCert).toMatch(/^refused/);
    await waitFor(() => /"listener":"status".*no client certificate/.test(stores[2]!.proc.output()), {
      timeoutMs: 5000,
      message: `store 3 logged no refusal on its status port; its output:\n${stores[2]!.proc.output()}`,
    });

    // A plaintext client (no TLS at all) is refused too.
    await expect(
      KvClient.connect({ scheduler: schedulerAddr, connectTimeoutMs: 1500, timeoutMs: 1500 }),
    ).rejects.toThrow();
    await waitFor(() => /the peer spoke plaintext to a TLS port/.test(scheduler.output()), {
      timeoutMs: 5000,
      message: `the scheduler logged no plaintext refusal; its output:\n${scheduler.output()}`,
    });
  });

  it("refuses a client whose certificate comes from another CA, and the server logs why", async () => {
    // It trusts the cluster's CA (so it accepts the server) but presents the other CA's certificate.
    const wrong = certs.wrongCaClient;
    const creds = grpc.credentials.createSsl(
      readFileSync(wrong.cacert),
      readFileSync(wrong.key),
      readFileSync(wrong.cert),
    );
    expect(await getMembers(schedulerAddr, creds)).toBe("UNAVAILABLE");
    await waitFor(
      () =>
        /refused a TLS connection from 127\.0\.0\.1:\d+: the peer's certificate did not verify against --cacert/.test(
          scheduler.output(),
        ),
      {
        timeoutMs: 5000,
        message: `the scheduler logged no refusal of the wrong certificate; its output:\n${scheduler.output()}`,
      },
    );

    // src/client refuses such a configuration itself, before it dials anything.
    expect(() =>
      TlsConfig.fromPem({
        caPem: readFileSync(wrong.cacert),
        certPem: readFileSync(wrong.cert),
        keyPem: readFileSync(wrong.key),
      }),
    ).toThrow(/tls.certPem: the certificate is not signed by the CA in tls.caPem/);

    // A client wholly of the other CA does not get in either (it also refuses the cluster's certificate).
    await expect(
      KvClient.connect({
        scheduler: schedulerAddr,
        tls: TlsConfig.fromFiles(certs.otherCa),
        connectTimeoutMs: 1500,
        timeoutMs: 1500,
      }),
    ).rejects.toThrow(/self-signed certificate|certificate/);
  });
});
