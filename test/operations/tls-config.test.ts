// The TLS files are checked once at start-up, and a bad one is named in a clear error (by the
// library) or a one-line exit (by the binaries), before anything listens or dials.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TlsConfig, TlsConfigError, tlsFromFlags } from "../../src/util/tls.js";
import { spawnNode } from "../harness/processes.js";
import type { TestCerts } from "../harness/tls-certs.js";
import { makeTestCerts, opensslMissing } from "../harness/tls-certs.js";
import { tempDir } from "../harness/wait.js";

const missing = opensslMissing();
if (missing) console.warn(missing);

async function exitOf(script: string, args: string[]): Promise<{ code: number | null; out: string }> {
  const p = spawnNode(script, args);
  // Generous: a loaded machine can take seconds just to start node.
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 20_000);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, out: p.output() };
}

describe.skipIf(missing !== undefined)("TLS configuration", () => {
  const dir = tempDir("tinykv-tls-config-");
  let certs: TestCerts;
  let notPem = "";
  beforeAll(() => {
    certs = makeTestCerts(dir.path);
    notPem = join(dir.path, "not-pem.txt");
    writeFileSync(notPem, "hello\n");
  });
  afterAll(() => dir.cleanup());

  it("accepts the CA, a certificate it signed and that certificate's key", () => {
    const tls = TlsConfig.fromFiles(certs.node);
    expect(tls.subject).toBe("CN=node");
    expect(TlsConfig.fromPem(tls)).toBe(tls);
  });

  it("names the file that is missing, not PEM, or does not fit", () => {
    const check = (files: Partial<typeof certs.node>) => () => TlsConfig.fromFiles({ ...certs.node, ...files });
    const nowhere = join(dir.path, "nowhere.pem");
    expect(check({ cert: nowhere })).toThrow(TlsConfigError);
    expect(check({ cert: nowhere })).toThrow(`--cert ${nowhere}: cannot read it`);
    expect(check({ cacert: notPem })).toThrow(`--cacert ${notPem}: no PEM certificate in it`);
    expect(check({ key: notPem })).toThrow(`--key ${notPem}: not a PEM private key`);
    expect(check({ key: certs.client.key })).toThrow(
      `--key ${certs.client.key} is not the private key of the certificate in --cert ${certs.node.cert}`,
    );
    expect(check({ cacert: certs.otherCa.cacert })).toThrow(
      `--cert ${certs.node.cert}: the certificate is not signed by the CA in --cacert ${certs.otherCa.cacert}`,
    );
  });

  it("wants all three flags or none", () => {
    expect(tlsFromFlags({})).toBeUndefined();
    expect(() => tlsFromFlags({ cacert: certs.node.cacert })).toThrow(
      "TLS needs --cacert, --cert and --key together; missing --cert and --key",
    );
  });

  it("the binaries exit 2 with one line naming the problem", async () => {
    const sched = await exitOf("tinyscheduler.js", ["--cacert", certs.node.cacert, "--status-addr", ""]);
    expect(sched.code).toBe(2);
    expect(sched.out).toContain(
      "tinyscheduler: error: TLS needs --cacert, --cert and --key together; missing --cert and --key",
    );
    const store = await exitOf("tinykv-server.js", [
      "--path",
      join(dir.path, "store"),
      "--cacert",
      certs.node.cacert,
      "--cert",
      certs.node.cert,
      "--key",
      notPem,
    ]);
    expect(store.code).toBe(2);
    expect(store.out).toContain(`tinykv-server: error: --key ${notPem}: not a PEM private key`);
    const ctl = await exitOf("tinykv-ctl.js", ["--key", certs.client.key, "status"]);
    expect(ctl.code).toBe(2);
    expect(ctl.out).toContain("tinykv-ctl: error: TLS needs --cacert, --cert and --key together");
  });
});
