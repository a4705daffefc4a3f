// Test certificates made at run time with the openssl binary, as the README tells a user to make them:
// a CA, a node certificate (server and client use, SAN 127.0.0.1 and localhost) that the scheduler and
// stores use, a client-only certificate, and an unrelated second CA with its own client certificate.
import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const OPENSSL = "/usr/bin/openssl";

/** Why TLS tests cannot run here, or undefined when they can. */
export function opensslMissing(): string | undefined {
  return existsSync(OPENSSL) ? undefined : `TLS tests skipped: ${OPENSSL} is missing (they make their CA with it)`;
}

export interface CertFiles {
  cacert: string;
  cert: string;
  key: string;
}

export interface TestCerts {
  /** The cluster's CA with the node certificate (tinyscheduler, tinykv-server). */
  node: CertFiles;
  /** The cluster's CA with a client-only certificate (src/client, tinykv-ctl). */
  client: CertFiles;
  /** Trusts the cluster's CA but presents a certificate from another CA: the "wrong certificate". */
  wrongCaClient: CertFiles;
  /** The other CA's own files throughout: trusts nothing of the cluster. */
  otherCa: CertFiles;
}

function openssl(dir: string, args: string[]): void {
  execFileSync(OPENSSL, args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
  ]);
}

function makeCert(dir: string, ca: string, name: string, extensions: string): void {
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(dir, [
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${name}`,
  ]);
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.pem`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
  ]);
}

/** Writes the certificates into `dir` (about 0.1 s with EC keys). */
export function makeTestCerts(dir: string): TestCerts {
  makeCa(dir, "ca");
  makeCa(dir, "other-ca");
  makeCert(
    dir,
    "ca",
    "node",
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n",
  );
  makeCert(dir, "ca", "client", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n");
  makeCert(dir, "other-ca", "intruder", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n");
  const p = (f: string) => join(dir, f);
  return {
    node: { cacert: p("ca.pem"), cert: p("node.pem"), key: p("node.key") },
    client: { cacert: p("ca.pem"), cert: p("client.pem"), key: p("client.key") },
    wrongCaClient: { cacert: p("ca.pem"), cert: p("intruder.pem"), key: p("intruder.key") },
    otherCa: { cacert: p("other-ca.pem"), cert: p("intruder.pem"), key: p("intruder.key") },
  };
}

/** The flags a binary takes for these files. */
export function tlsFlags(files: CertFiles): string[] {
  return ["--cacert", files.cacert, "--cert", files.cert, "--key", files.key];
}
